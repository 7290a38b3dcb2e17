//! Checkout API v3: create a session, read it, the customer's landing page, and the callback
//! to the merchant when the payment ends.
//!
//! Checkout authenticates with the merchant's keys in headers (`client_id`, `client_secret`,
//! `Ocp-Apim-Subscription-Key`, and `Merchant-Serial-Number`), not with an access token; a
//! missing or wrong one is a 401 (see [`authenticate`]). Sessions belong to one merchant and
//! are named by the transaction's `reference`: a reference the merchant already used for a
//! session or an ePayment payment is a 409, another merchant's session is unknown (404).
//!
//! # The life of a session
//!
//! | `sessionState` | reached by |
//! |---|---|
//! | `SessionCreated` | `POST /checkout/v3/session` |
//! | `PaymentInitiated` | the customer opens the landing page: an ePayment payment with the session's reference and amount is created (`CREATED`) |
//! | `PaymentSuccessful` | the customer approves: the payment is `AUTHORIZED` for the whole amount |
//! | `PaymentTerminated` | the customer rejects (the payment is `ABORTED`), or nobody answers before the payment expires ([`crate::SandboxBuilder::epayment_expiry`], 5 minutes by default) |
//! | `SessionExpired` | nobody opened the session within [`SESSION_LIFETIME`] (one hour, as the guide says) |
//!
//! Expiry is applied when a session is next looked at. The payment is an ordinary ePayment
//! payment of the merchant ([`crate::epayment`]): its events reach the merchant's webhooks, and
//! the ePayment API captures, refunds and cancels it; `paymentDetails` shows its state
//! (`CREATED`, `AUTHORIZED`, or `TERMINATED` for an aborted, expired or cancelled one) and its
//! aggregate as they are now.
//!
//! # The landing page
//!
//! `checkoutFrontendUrl` is the sandbox's landing page, [`LANDING_PATH`]; a browser opens it
//! with the session's `token` as query (`<checkoutFrontendUrl>?token=<token>`), as the Checkout
//! frontend SDK does. The page is plain HTML with every value escaped: the amount, the
//! description, the reference, and a form that posts the token and `action=approve` or
//! `action=reject` to the same URL. The answer to the post is a `303 See Other` to the
//! session's `returnUrl`. A post for a session that has already ended changes nothing and
//! redirects again. An unknown token is a 404 page. The page needs no credentials (the token
//! is the customer's).
//!
//! # The callback
//!
//! When a session reaches `PaymentSuccessful` or `PaymentTerminated`, the sandbox `POST`s the
//! session (the body of `GET /checkout/v3/session/{reference}`) to `merchantInfo.callbackUrl`,
//! once, with `Authorization` set to the `callbackAuthorizationToken` given at creation, as the
//! Checkout guide describes. One that does not get a 2xx answer (or none within 10 s) is tried
//! again after [`crate::SandboxBuilder::webhook_retry_delay`] (1 s by default), doubled each
//! time, [`MAX_CALLBACK_ATTEMPTS`] attempts in all (the guide's "retried a maximum of 3
//! times"). [`Store::callback_log`] lists the attempts. An expired session that never had a
//! payment gets no callback.
//!
//! Differences from the real service, on purpose: logistics, order summaries and the
//! configuration are checked against the spec and kept, but the landing page offers no
//! shipping, so the payment's amount is the transaction's amount and `shippingDetails` is left
//! out; a successful session's `billingDetails` are the prefilled customer when complete, the
//! sandbox's test user otherwise; the `token` is an opaque string, not a JWT.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vipps_checkout::types::{
    Amount, BillingDetails, ExternalSessionState, InitiateSessionRequest, InitiateSessionResponse, PaymentMethod,
    PaymentState, ResponsePaymentDetails, SessionResponse, TransactionAggregate, UserInfo,
};
use vipps_epayment::types::State as EpaymentState;

use crate::epayment::CheckoutView;
use crate::extract::{check_url, Json, Msn, Path, Query};
use crate::landing::page;
use crate::recurring::money;
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// How long a session waits to be opened before it is `SessionExpired`: one hour.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// How many times one callback is tried at most: the first attempt and 3 retries.
pub const MAX_CALLBACK_ATTEMPTS: u32 = 4;

/// Where the landing page is served (`checkoutFrontendUrl` is the base URL and this path).
pub const LANDING_PATH: &str = "/checkout/landing";

/// The path prefix of the Checkout API, whose calls authenticate with client headers.
pub(crate) const API_PREFIX: &str = "/checkout/v3/";

/// A successful session's billing details when the request prefilled no complete customer.
const TEST_USER: (&str, &str, &str, &str) = ("Ada", "Lovelace", "ada.lovelace@example.com", "4791234567");

#[derive(Debug, Clone)]
struct Session {
    session_id: String,
    request: InitiateSessionRequest,
    created_at: DateTime<Utc>,
    /// Whether the customer opened it, so that its ePayment payment exists.
    payment_created: bool,
    callback_sent: bool,
    /// `sub` of the user info, when the session asked for it.
    sub: String,
}

/// One callback attempt's outcome, kept for tests that look inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    /// Where it went.
    pub url: String,
    /// The session's reference.
    pub reference: String,
    /// The answer's status, `None` when there was none.
    pub status: Option<u16>,
}

/// Checkout sessions, by (merchant serial number, reference), and their tokens.
#[derive(Debug, Default)]
pub struct Store {
    sessions: HashMap<(String, String), Session>,
    by_token: HashMap<String, (String, String)>,
    callbacks: Vec<CallbackAttempt>,
    http: Option<vipps_core::reqwest::Client>,
}

impl Store {
    /// How many sessions exist, for tests that check a rejected request created nothing.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Every callback attempt, oldest first.
    pub fn callback_log(&self) -> &[CallbackAttempt] {
        &self.callbacks
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/checkout/v3/session", post(create))
        .route("/checkout/v3/session/{reference}", get(read))
        .route(LANDING_PATH, get(landing).post(answer))
}

/// Checks the client headers every Checkout API call carries: `client_id`, `client_secret`
/// and `Ocp-Apim-Subscription-Key` must be the sandbox's (a 401 otherwise).
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let c = &state.config.credentials;
    let expected = [
        ("client_id", c.client_id.as_str()),
        ("client_secret", c.client_secret.as_str()),
        ("ocp-apim-subscription-key", c.subscription_key.as_str()),
    ];
    for (name, value) in expected {
        match headers.get(name) {
            None => return Err(ApiError::unauthorized(format!("the {name} header is required"))),
            Some(given) if given.as_bytes() != value.as_bytes() => {
                return Err(ApiError::unauthorized(format!("the {name} header is not valid")))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A URL the sandbox will send a browser to or call: absolute http(s), and visible ASCII so
/// that it fits in a header.
fn check_link(field: &str, value: &str) -> ApiResult<()> {
    check_url(field, value)?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(field, "must be visible ASCII (percent-encode anything else)"));
    }
    Ok(())
}

fn check_create(body: &InitiateSessionRequest) -> ApiResult<()> {
    let info = &body.merchant_info;
    check_link("merchantInfo.callbackUrl", &info.callback_url)?;
    check_link("merchantInfo.returnUrl", &info.return_url)?;
    if let Some(terms) = &info.terms_and_conditions_url {
        check_link("merchantInfo.termsAndConditionsUrl", terms)?;
    }
    // It is sent back as the callback's `Authorization` header.
    let token = &info.callback_authorization_token;
    if token.is_empty() || HeaderValue::from_str(token).is_err() || !token.is_ascii() {
        return Err(ApiError::invalid("merchantInfo.callbackAuthorizationToken", "must be non-empty visible ASCII"));
    }
    let amount = &body.transaction.amount;
    if amount.value == 0 {
        return Err(ApiError::invalid("transaction.amount.value", "must be a positive amount in minor units"));
    }
    epayment_amount(amount)?;
    Ok(())
}

/// The largest ePayment amount, in minor units (the ePayment document's `maximum`).
const EPAYMENT_MAX_AMOUNT: u64 = 65_000_000;

/// The ePayment amount of a Checkout amount; a 400 naming the currency when ePayment has no such one.
fn epayment_amount(amount: &Amount) -> ApiResult<vipps_epayment::types::Amount> {
    let currency = serde_json::from_value::<vipps_epayment::types::Currency>(serde_json::Value::String(amount.currency.clone()))
        .ok()
        .filter(|c| !matches!(c, vipps_epayment::types::Currency::Unknown(_)))
        .ok_or_else(|| ApiError::invalid("transaction.amount.currency", "must be one of NOK, DKK and EUR"))?;
    // The session's payment is an ePayment payment, whose amount is at most 65,000,000 minor
    // units: a larger one would be stored and then fail every read of the payment.
    let value = u64::from(amount.value);
    if value > EPAYMENT_MAX_AMOUNT {
        return Err(ApiError::invalid(
            "transaction.amount.value",
            format!("must be at most {EPAYMENT_MAX_AMOUNT} minor units (the ePayment payment it makes)"),
        ));
    }
    Ok(vipps_epayment::types::Amount { currency, value })
}

async fn create(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Json(body): Json<InitiateSessionRequest>,
) -> ApiResult<axum::Json<InitiateSessionResponse>> {
    check_create(&body)?;
    let reference = body.transaction.reference.to_string();
    let taken = lock(&state.epayment).contains(&msn, &reference);
    let mut store = lock(&state.checkout);
    if taken || store.sessions.contains_key(&(msn.clone(), reference.clone())) {
        return Err(ApiError::conflict(format!("reference {reference} is already used by this merchant")));
    }
    let token = format!("sbx-checkout.{}.{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let session = Session {
        session_id: uuid::Uuid::new_v4().simple().to_string(),
        request: body,
        created_at: state.now(),
        payment_created: false,
        callback_sent: false,
        sub: uuid::Uuid::new_v4().to_string(),
    };
    store.sessions.insert((msn.clone(), reference.clone()), session);
    store.by_token.insert(token.clone(), (msn, reference.clone()));
    Ok(axum::Json(InitiateSessionResponse {
        checkout_frontend_url: format!("{}{LANDING_PATH}", state.base_url()),
        polling_url: format!("{}/checkout/v3/session/{reference}", state.base_url()),
        token,
    }))
}

async fn read(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
) -> ApiResult<axum::Json<SessionResponse>> {
    current(&state, &msn, &reference).map(axum::Json)
}

fn session(state: &AppState, msn: &str, reference: &str) -> ApiResult<Session> {
    lock(&state.checkout)
        .sessions
        .get(&(msn.to_owned(), reference.to_owned()))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no session with reference {reference}")))
}

/// The session as it is now; when it has just ended with a payment, its callback is sent.
fn current(state: &AppState, msn: &str, reference: &str) -> ApiResult<SessionResponse> {
    let session = session(state, msn, reference)?;
    let payment = if session.payment_created { crate::epayment::view_for_checkout(state, msn, reference) } else { None };
    let view = view(&session, msn, payment, state.now());
    let ended = matches!(view.session_state, ExternalSessionState::PaymentSuccessful | ExternalSessionState::PaymentTerminated);
    if ended {
        let mut store = lock(&state.checkout);
        let first = store
            .sessions
            .get_mut(&(msn.to_owned(), reference.to_owned()))
            .is_some_and(|s| !std::mem::replace(&mut s.callback_sent, true));
        if first {
            let http = store.http.get_or_insert_with(callback_client).clone();
            drop(store);
            tokio::spawn(send_callback(state.clone(), http, session.request.merchant_info.clone(), view.clone()));
        }
    }
    Ok(view)
}

/// A Checkout amount in the payment's currency. The values come from Checkout amounts, so they fit.
macro_rules! checkout_amount {
    ($amount:expr, $value:expr) => {
        Amount { currency: $amount.currency.to_string(), value: $value.try_into().unwrap_or_default() }
    };
}

fn view(session: &Session, msn: &str, payment: Option<CheckoutView>, now: DateTime<Utc>) -> SessionResponse {
    let request = &session.request;
    let mut response = SessionResponse {
        billing_details: None,
        custom_consent_provided: None,
        merchant_serial_number: Some(msn.to_owned()),
        payment_details: None,
        payment_method: None,
        reference: request.transaction.reference.to_string(),
        session_id: session.session_id.clone(),
        session_state: ExternalSessionState::SessionCreated,
        shipping_details: None,
        user_info: None,
    };
    let Some(payment) = payment else {
        if now >= session.created_at + SESSION_LIFETIME {
            response.session_state = ExternalSessionState::SessionExpired;
        }
        return response;
    };
    let authorized = payment.aggregate.authorized_amount.value > 0;
    let (session_state, state) = match payment.state {
        EpaymentState::Created => (ExternalSessionState::PaymentInitiated, PaymentState::Created),
        EpaymentState::Authorized => (ExternalSessionState::PaymentSuccessful, PaymentState::Authorized),
        // Cancelled after it was authorized: the session succeeded, the payment is over.
        _ if authorized => (ExternalSessionState::PaymentSuccessful, PaymentState::Terminated),
        _ => (ExternalSessionState::PaymentTerminated, PaymentState::Terminated),
    };
    let aggregate = &payment.aggregate;
    response.session_state = session_state;
    response.payment_method = Some(PaymentMethod::Wallet);
    response.payment_details = Some(ResponsePaymentDetails {
        aggregate: Some(TransactionAggregate {
            authorized_amount: Some(checkout_amount!(payment.amount, aggregate.authorized_amount.value)),
            cancelled_amount: Some(checkout_amount!(payment.amount, aggregate.cancelled_amount.value)),
            captured_amount: Some(checkout_amount!(payment.amount, aggregate.captured_amount.value)),
            refunded_amount: Some(checkout_amount!(payment.amount, aggregate.refunded_amount.value)),
        }),
        amount: checkout_amount!(payment.amount, payment.amount.value),
        state,
    });
    if authorized {
        response.billing_details = Some(billing_details(request));
        let config = request.configuration.as_ref();
        if config.and_then(|c| c.require_user_info) == Some(true) {
            let email = response.billing_details.as_ref().map(|b| b.email.clone());
            response.user_info = Some(UserInfo { email, sub: session.sub.clone() });
        }
        if config.is_some_and(|c| c.custom_consent.is_some()) {
            response.custom_consent_provided = Some(true);
        }
    }
    response
}

fn billing_details(request: &InitiateSessionRequest) -> BillingDetails {
    let prefill = request.prefill_customer.as_ref();
    let complete = prefill.and_then(|p| {
        Some(BillingDetails {
            first_name: p.first_name.clone()?,
            last_name: p.last_name.clone()?,
            email: p.email.clone()?,
            phone_number: p.phone_number.clone()?,
            street_address: p.street_address.clone(),
            postal_code: p.postal_code.clone(),
            city: p.city.clone(),
            country: p.country.clone(),
        })
    });
    complete.unwrap_or_else(|| {
        let (first, last, email, phone) = TEST_USER;
        BillingDetails {
            first_name: first.into(),
            last_name: last.into(),
            email: email.into(),
            phone_number: phone.into(),
            street_address: None,
            postal_code: None,
            city: None,
            country: None,
        }
    })
}

fn callback_client() -> vipps_core::reqwest::Client {
    vipps_core::reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(vipps_core::reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Sends the callback of an ended session, trying again on failure (see the module documentation).
async fn send_callback(
    state: AppState,
    http: vipps_core::reqwest::Client,
    info: vipps_checkout::types::PaymentMerchantInfo,
    view: SessionResponse,
) {
    let Ok(body) = serde_json::to_vec(&view) else { return };
    let first = state.config.webhook_retry_delay;
    let state = std::sync::Arc::downgrade(&state);
    let attempt = || async {
        let status = http
            .post(&info.callback_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, info.callback_authorization_token.as_str())
            .body(body.clone())
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        let shared = state.upgrade()?;
        lock(&shared.checkout).callbacks.push(CallbackAttempt {
            url: info.callback_url.clone(),
            reference: view.reference.clone(),
            status,
        });
        Some(status)
    };
    crate::delivery::with_retries(MAX_CALLBACK_ATTEMPTS, first, attempt).await;
}

#[derive(Deserialize)]
struct LandingQuery {
    token: String,
}

#[derive(Deserialize)]
struct LandingForm {
    token: String,
    action: String,
}

fn unknown_session() -> Response {
    page(StatusCode::NOT_FOUND, "Unknown checkout session", "<p>No checkout session has this token.</p>")
}


/// The customer opens the session: it becomes `PaymentInitiated` (its payment is created) and
/// the page asks to approve or reject.
async fn landing(State(state): State<AppState>, Query(query): Query<LandingQuery>) -> Response {
    let Some((msn, reference)) = lock(&state.checkout).by_token.get(&query.token).cloned() else {
        return unknown_session();
    };
    let view = match open(&state, &msn, &reference) {
        Ok(view) => view,
        Err(e) => return page(e.status, "Checkout failed", &format!("<p>{}</p>", html_escape::encode_text(&e.detail))),
    };
    let Ok(session) = session(&state, &msn, &reference) else { return unknown_session() };
    let t = &session.request.transaction;
    let e = |s: &str| html_escape::encode_text(s).into_owned();
    let facts = format!(
        "<p>Pay <strong id=\"amount\">{} {}</strong> to merchant {} for <span id=\"description\">{}</span>.</p>\n<p>Reference: <code id=\"reference\">{}</code></p>",
        money(t.amount.value),
        e(&t.amount.currency),
        e(&msn),
        e(&t.payment_description),
        e(&t.reference),
    );
    // (SessionCreated only while another request is opening it at this moment.)
    let open = matches!(view.session_state, ExternalSessionState::SessionCreated | ExternalSessionState::PaymentInitiated);
    if !open {
        let back = html_escape::encode_double_quoted_attribute(session.request.merchant_info.return_url.as_str());
        let body = format!(
            "{facts}\n<p>This session has ended: <span id=\"state\">{}</span>.</p>\n<p><a href=\"{back}\">Back to the shop</a></p>",
            e(&view.session_state.to_string())
        );
        return page(StatusCode::OK, "Checkout (sandbox)", &body);
    }
    let token = html_escape::encode_double_quoted_attribute(&query.token);
    let body = format!(
        "{facts}\n<form method=\"post\" action=\"{LANDING_PATH}\">\n<input type=\"hidden\" name=\"token\" value=\"{token}\">\n<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n<button type=\"submit\" name=\"action\" value=\"reject\">Reject</button>\n</form>"
    );
    page(StatusCode::OK, "Checkout (sandbox)", &body)
}

/// Creates the session's payment when it is opened for the first time and still open.
fn open(state: &AppState, msn: &str, reference: &str) -> ApiResult<SessionResponse> {
    let view = current(state, msn, reference)?;
    if view.session_state != ExternalSessionState::SessionCreated {
        return Ok(view);
    }
    let key = (msn.to_owned(), reference.to_owned());
    // Claim the opening, so that two pages opened at once make one payment.
    let session = {
        let mut store = lock(&state.checkout);
        let session = store.sessions.get_mut(&key).ok_or_else(|| ApiError::not_found("no such session"))?;
        if std::mem::replace(&mut session.payment_created, true) {
            drop(store);
            return current(state, msn, reference);
        }
        session.clone()
    };
    let t = &session.request.transaction;
    let created = epayment_amount(&t.amount).and_then(|amount| {
        let epayment_reference = t
            .reference
            .parse()
            .map_err(|_| ApiError::invalid("transaction.reference", "is not a valid ePayment reference"))?;
        let landing = format!("{}{LANDING_PATH}", state.base_url());
        crate::epayment::create_for_checkout(state, msn, epayment_reference, amount, landing)
    });
    if let Err(e) = created {
        if let Some(s) = lock(&state.checkout).sessions.get_mut(&key) {
            s.payment_created = false;
        }
        return Err(e);
    }
    current(state, msn, reference)
}

/// The customer's answer: the payment is authorized or aborted, the callback goes out, and the
/// browser is sent to `returnUrl`.
async fn answer(State(state): State<AppState>, Form(form): Form<LandingForm>) -> Response {
    let approve = match form.action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return page(StatusCode::BAD_REQUEST, "Checkout failed", "<p>The action must be approve or reject.</p>"),
    };
    let Some((msn, reference)) = lock(&state.checkout).by_token.get(&form.token).cloned() else {
        return unknown_session();
    };
    let outcome = open(&state, &msn, &reference).and_then(|view| {
        if view.session_state == ExternalSessionState::PaymentInitiated {
            crate::epayment::answer_for_checkout(&state, &msn, &reference, approve)?;
        }
        current(&state, &msn, &reference)
    });
    if let Err(e) = outcome {
        let status = e.status;
        return page(status, "Checkout failed", &format!("<p>{}</p>", html_escape::encode_text(&e.detail)));
    }
    let Ok(session) = session(&state, &msn, &reference) else { return unknown_session() };
    let return_url = session.request.merchant_info.return_url.to_string();
    match HeaderValue::from_str(&return_url) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => page(StatusCode::INTERNAL_SERVER_ERROR, "Checkout failed", "<p>The return URL is not valid.</p>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_in_major_units() {
        assert_eq!(money(12345), "123.45");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(100), "1.00");
    }
}
