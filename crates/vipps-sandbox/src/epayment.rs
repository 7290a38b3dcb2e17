//! ePayment API v1: create a payment, read it and its event log, cancel, capture and refund
//! it, and the test-only force approve.
//!
//! Payments belong to one merchant (`Merchant-Serial-Number`) and are named by the
//! merchant's `reference`; a reference the merchant already used is a 409, and another
//! merchant's payment with the same reference is unknown (404). Create, cancel, capture and
//! refund require an `Idempotency-Key` (at most 50 characters, as the spec says); a replay
//! with the same key and body gets the first answer again (see [`crate::middleware`]).
//!
//! # The life of a payment
//!
//! | state | reached by |
//! |---|---|
//! | `CREATED` | create: waiting for the customer |
//! | `AUTHORIZED` | force approve (the customer approved): the whole amount is reserved |
//! | `AUTHORIZED` | or the customer approved on the landing page (`redirectUrl`, see [`crate::landing`]) |
//! | `ABORTED` | the customer rejected on the landing page |
//! | `EXPIRED` | nobody approved it in time: 5 minutes of sandbox time by default ([`crate::SandboxBuilder::epayment_expiry`]), or at the request's `expiresAt` |
//! | `TERMINATED` | cancel before anything was captured |
//!
//! The payment's `aggregate` tells what happened to the money: `authorizedAmount` (the whole
//! amount once authorized), `capturedAmount`, `refundedAmount` and `cancelledAmount`. A capture
//! may take at most what is authorized and neither captured nor cancelled; a refund at most
//! what is captured and not refunded; both may be partial and repeated. Asking for more is a
//! `400 application/problem+json` naming `modificationAmount.value`, and a currency other than
//! the payment's names `modificationAmount.currency`; nothing changes. A cancel of an
//! authorized payment releases everything not captured: with nothing captured the payment is
//! `TERMINATED`, after a partial capture it stays `AUTHORIZED` with the rest cancelled.
//! Capturing, refunding or cancelling a payment in a state that does not allow it (not yet
//! authorized, expired, terminated; cancelling when nothing is left to release) is a 409.
//!
//! Every change is written to the event log (`GET .../events`), oldest first, stamped with
//! the sandbox clock: `CREATED`, `AUTHORIZED`, `CAPTURED`, `REFUNDED`, `CANCELLED`,
//! `TERMINATED`, `EXPIRED`, `ABORTED`, each with the amount it concerns and the idempotency
//! key of the request that caused it. Expiry is applied when a payment is next looked at, and
//! its event is stamped with the moment it expired.
//!
//! Every event is also delivered, signed, to the webhooks the merchant registered for
//! `epayments.payment.<name>.v1` (see [`crate::delivery`]).
//!
//! A Checkout session ([`crate::checkout`]) makes its payment here when the customer opens it,
//! with the session's reference and amount; the customer's answer on its landing page
//! authorizes it or makes it `ABORTED`.
//!
//! Differences from the real service, on purpose: every `userFlow` gets a `redirectUrl` on
//! the sandbox (even `PUSH_MESSAGE`): the sandbox's own landing page, carrying the token force
//! approve accepts and the page's form must send back; the spec's
//! required `paymentAction` of an event holds the event's name.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use vipps_epayment::types::{
    Aggregate, Amount, CaptureModificationRequest, CreatePaymentRequest, CreatePaymentRequestUserFlow,
    CreatePaymentResponse, Customer, ForceApprove, GetPaymentResponse, ModificationResponse, PaymentEvent,
    PaymentEventName, PaymentMethodResponse, PaymentMethodType, ProfileResponse, PspReference, Reference,
    RefundModificationRequest, State as PaymentState,
};

use crate::extract::{check_url, parse_json, Json, Msn, Path};
use crate::problem::{ApiError, ApiResult};
use crate::landing::Decision;
use crate::state::{lock, AppState};

/// The longest `Idempotency-Key` the ePayment API accepts.
const MAX_IDEMPOTENCY_KEY: usize = 50;

#[derive(Debug, Clone)]
struct Payment {
    reference: Reference,
    psp_reference: String,
    amount: Amount,
    state: PaymentState,
    authorized: u64,
    captured: u64,
    refunded: u64,
    cancelled: u64,
    expires_at: DateTime<Utc>,
    token: String,
    phone_number: Option<String>,
    payment_method: PaymentMethodType,
    redirect_url: String,
    return_url: Option<String>,
    description: Option<String>,
    events: Vec<PaymentEvent>,
}

impl Payment {
    fn amount_of(&self, value: u64) -> Amount {
        Amount { currency: self.amount.currency.clone(), value }
    }

    fn record(&mut self, name: PaymentEventName, value: u64, key: Option<&str>, at: DateTime<Utc>) {
        let event = PaymentEvent {
            amount: self.amount_of(value),
            idempotency_key: key.and_then(|k| k.parse().ok()),
            payment_action: serde_json::Value::String(name.to_string()),
            name: Some(name),
            psp_reference: PspReference(self.psp_reference.clone()),
            reference: self.reference.clone(),
            success: true,
            timestamp: at,
        };
        self.events.push(event);
    }

    /// Expires a payment nobody approved in time.
    fn expire_if_due(&mut self, now: DateTime<Utc>) {
        if self.state == PaymentState::Created && now >= self.expires_at {
            self.state = PaymentState::Expired;
            let at = self.expires_at;
            self.record(PaymentEventName::Expired, self.amount.value, None, at);
        }
    }

    fn aggregate(&self) -> Aggregate {
        Aggregate {
            authorized_amount: self.amount_of(self.authorized),
            cancelled_amount: self.amount_of(self.cancelled),
            captured_amount: self.amount_of(self.captured),
            refunded_amount: self.amount_of(self.refunded),
        }
    }

    fn view(&self) -> GetPaymentResponse {
        GetPaymentResponse {
            aggregate: self.aggregate(),
            amount: self.amount.clone(),
            metadata: None,
            payment_method: PaymentMethodResponse { card_bin: None, type_: self.payment_method.clone() },
            profile: ProfileResponse::default(),
            psp_reference: PspReference(self.psp_reference.clone()),
            redirect_url: Some(self.redirect_url.clone()),
            reference: self.reference.clone(),
            state: self.state.clone(),
        }
    }

    fn modification(&self) -> ModificationResponse {
        ModificationResponse {
            aggregate: self.aggregate(),
            amount: self.amount.clone(),
            psp_reference: PspReference(self.psp_reference.clone()),
            reference: self.reference.clone(),
            state: self.state.clone(),
        }
    }
}

/// ePayment payments, by (merchant serial number, reference).
#[derive(Debug, Default)]
pub struct Store {
    payments: HashMap<(String, String), Payment>,
}

impl Store {
    /// How many payments exist, for tests that check a rejected request created nothing.
    pub fn payment_count(&self) -> usize {
        self.payments.len()
    }

    /// When the payment `reference` of `msn` whose landing page carries `token` stops waiting
    /// for the customer, if it still waits (the QR API's one-time payment QR codes).
    pub(crate) fn waiting_for_customer(&mut self, msn: &str, reference: &str, token: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let p = self.payments.get_mut(&(msn.to_owned(), reference.to_owned()))?;
        p.expire_if_due(now);
        (p.state == PaymentState::Created && p.token == token).then_some(p.expires_at)
    }

    /// Every capture and refund of every payment, for the Report API's ledgers; in no
    /// particular order.
    pub(crate) fn money_events(&self) -> Vec<crate::report::MoneyEvent> {
        self.payments
            .iter()
            .flat_map(|((msn, _), p)| {
                p.events.iter().enumerate().filter_map(move |(i, e)| {
                    let captured = match e.name {
                        Some(PaymentEventName::Captured) => true,
                        Some(PaymentEventName::Refunded) => false,
                        _ => return None,
                    };
                    Some(crate::report::MoneyEvent {
                        msn: msn.clone(),
                        reference: e.reference.to_string(),
                        psp_reference: e.psp_reference.to_string(),
                        currency: e.amount.currency.to_string(),
                        at: e.timestamp,
                        index: i,
                        captured,
                        value: i64::try_from(e.amount.value).unwrap_or(i64::MAX),
                    })
                })
            })
            .collect()
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/epayment/v1/payments", post(create))
        .route("/epayment/v1/payments/{reference}", get(read))
        .route("/epayment/v1/payments/{reference}/events", get(events))
        .route("/epayment/v1/payments/{reference}/cancel", post(cancel))
        .route("/epayment/v1/payments/{reference}/capture", post(capture))
        .route("/epayment/v1/payments/{reference}/refund", post(refund))
        .route("/epayment/v1/test/payments/{reference}/approve", post(force_approve))
}

/// The required `Idempotency-Key`: 1 to 50 characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "the header is required"))?
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be ASCII"))?;
    if value.is_empty() || value.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid("Idempotency-Key", format!("1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(value.to_owned())
}

fn check_create(body: &CreatePaymentRequest) -> ApiResult<()> {
    if body.amount.value < 1 {
        return Err(ApiError::invalid("amount.value", "must be a positive amount in minor units"));
    }
    let redirect = matches!(
        body.user_flow,
        CreatePaymentRequestUserFlow::WebRedirect | CreatePaymentRequestUserFlow::NativeRedirect
    );
    match &body.return_url {
        Some(url) => check_url("returnUrl", url)?,
        None if redirect => {
            return Err(ApiError::invalid("returnUrl", "required for WEB_REDIRECT and NATIVE_REDIRECT"))
        }
        None => {}
    }
    if body.user_flow == CreatePaymentRequestUserFlow::PushMessage && phone_number(body.customer.as_ref()).is_none() {
        return Err(ApiError::invalid("customer.phoneNumber", "required for PUSH_MESSAGE"));
    }
    Ok(())
}

fn phone_number(customer: Option<&Customer>) -> Option<String> {
    match customer? {
        Customer::CustomerPhoneNumber(c) => c.phone_number.as_ref().map(|p| p.to_string()),
        _ => None,
    }
}

async fn create(
    State(state): State<AppState>,
    Msn(msn): Msn,
    headers: HeaderMap,
    Json(body): Json<CreatePaymentRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatePaymentResponse>)> {
    let key = idempotency_key(&headers)?;
    check_create(&body)?;
    let now = state.now();
    let expires_at = match &body.expires_at {
        Some(at) => {
            let at: DateTime<Utc> =
                at.parse().map_err(|_| ApiError::invalid("expiresAt", "must be an RFC 3339 date-time"))?;
            if at <= now + chrono::Duration::minutes(10) || at >= now + chrono::Duration::days(28) {
                return Err(ApiError::invalid("expiresAt", "must be more than 10 minutes and less than 28 days ahead"));
            }
            at
        }
        None => now + chrono::Duration::from_std(state.config.epayment_expiry).unwrap_or(chrono::Duration::minutes(5)),
    };
    let reference = body.reference.to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let redirect_url = format!("{}/epayment/v1/landing/{reference}?token={token}", state.base_url());
    let mut store = lock(&state.epayment);
    if store.payments.contains_key(&(msn.clone(), reference.clone())) {
        return Err(ApiError::conflict(format!(
            "reference {reference} is already used by another payment of this merchant"
        )));
    }
    let mut payment = Payment {
        reference: body.reference.clone(),
        psp_reference: uuid::Uuid::new_v4().simple().to_string(),
        amount: body.amount.clone(),
        state: PaymentState::Created,
        authorized: 0,
        captured: 0,
        refunded: 0,
        cancelled: 0,
        expires_at,
        token,
        phone_number: phone_number(body.customer.as_ref()),
        payment_method: body.payment_method.type_.clone(),
        redirect_url: redirect_url.clone(),
        return_url: body.return_url.clone(),
        description: body.payment_description.as_ref().map(|d| d.to_string()),
        events: Vec::new(),
    };
    payment.record(PaymentEventName::Created, body.amount.value, Some(&key), now);
    publish(&state, &msn, &payment.events);
    store.payments.insert((msn, reference), payment);
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatePaymentResponse { redirect_url: Some(redirect_url), reference: body.reference }),
    ))
}

/// Runs `f` on the merchant's payment, after applying its expiry; the events it adds (and
/// an expiry's) go to the registered webhooks.
fn with_payment<T>(
    state: &AppState,
    msn: &str,
    reference: &str,
    f: impl FnOnce(&mut Payment) -> ApiResult<T>,
) -> ApiResult<T> {
    let now = state.now();
    let mut store = lock(&state.epayment);
    let payment = store
        .payments
        .get_mut(&(msn.to_owned(), reference.to_owned()))
        .ok_or_else(|| ApiError::not_found(format!("no payment with reference {reference}")))?;
    let before = payment.events.len();
    payment.expire_if_due(now);
    let result = f(payment);
    publish(state, msn, &payment.events[before..]);
    result
}

/// Queues events for delivery to the merchant's webhooks (see [`crate::delivery`]).
fn publish(state: &AppState, msn: &str, events: &[PaymentEvent]) {
    for event in events {
        let Some(name) = &event.name else { continue };
        let Ok(mut body) = serde_json::to_value(event) else { continue };
        if let Some(map) = body.as_object_mut() {
            map.remove("paymentAction");
            map.insert("msn".into(), serde_json::Value::String(msn.to_owned()));
        }
        let outgoing = crate::delivery::Outgoing {
            msn: msn.to_owned(),
            event: format!("epayments.payment.{}.v1", name.to_string().to_ascii_lowercase()),
            body: bytes::Bytes::from(body.to_string()),
        };
        // Only a started sandbox delivers; for a bare router the event is dropped.
        let _ = state.outbox.send(outgoing);
    }
}

async fn read(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
) -> ApiResult<axum::Json<GetPaymentResponse>> {
    with_payment(&state, &msn, &reference, |p| Ok(axum::Json(p.view())))
}

async fn events(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
) -> ApiResult<axum::Json<Vec<PaymentEvent>>> {
    with_payment(&state, &msn, &reference, |p| Ok(axum::Json(p.events.clone())))
}

/// Checks a modification's amount against what is open (`open`), naming the field at fault.
fn check_amount(payment: &Payment, amount: &Amount, open: u64, what: &str) -> ApiResult<()> {
    if amount.currency != payment.amount.currency {
        return Err(ApiError::invalid(
            "modificationAmount.currency",
            format!("must be the payment's currency, {}", payment.amount.currency),
        ));
    }
    if amount.value < 1 {
        return Err(ApiError::invalid("modificationAmount.value", "must be a positive amount in minor units"));
    }
    if amount.value > open {
        return Err(ApiError::invalid(
            "modificationAmount.value",
            format!("{} is more than the {open} left to {what}", amount.value),
        ));
    }
    Ok(())
}

fn state_conflict(payment: &Payment, action: &str) -> ApiError {
    ApiError::conflict(format!("a payment in state {} cannot be {action}", payment.state))
}

async fn cancel(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<ModificationResponse>> {
    let key = idempotency_key(&headers)?;
    let now = state.now();
    with_payment(&state, &msn, &reference, |p| {
        match p.state {
            PaymentState::Created => {
                p.state = PaymentState::Terminated;
                p.record(PaymentEventName::Terminated, p.amount.value, Some(&key), now);
            }
            PaymentState::Authorized => {
                let release = p.authorized - p.captured - p.cancelled;
                if release == 0 {
                    return Err(ApiError::conflict(
                        "nothing is left to cancel: the whole amount is captured or cancelled",
                    ));
                }
                p.cancelled += release;
                p.record(PaymentEventName::Cancelled, release, Some(&key), now);
                if p.captured == 0 {
                    p.state = PaymentState::Terminated;
                    p.record(PaymentEventName::Terminated, release, Some(&key), now);
                }
            }
            _ => return Err(state_conflict(p, "cancelled")),
        }
        Ok(axum::Json(p.modification()))
    })
}

async fn capture(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CaptureModificationRequest>,
) -> ApiResult<axum::Json<ModificationResponse>> {
    let key = idempotency_key(&headers)?;
    let now = state.now();
    with_payment(&state, &msn, &reference, |p| {
        if p.state != PaymentState::Authorized {
            return Err(state_conflict(p, "captured"));
        }
        check_amount(p, &body.modification_amount, p.authorized - p.captured - p.cancelled, "capture")?;
        p.captured += body.modification_amount.value;
        p.record(PaymentEventName::Captured, body.modification_amount.value, Some(&key), now);
        Ok(axum::Json(p.modification()))
    })
}

async fn refund(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RefundModificationRequest>,
) -> ApiResult<axum::Json<ModificationResponse>> {
    let key = idempotency_key(&headers)?;
    let now = state.now();
    with_payment(&state, &msn, &reference, |p| {
        if p.captured == 0 {
            return Err(ApiError::conflict("nothing is captured, so nothing can be refunded"));
        }
        check_amount(p, &body.modification_amount, p.captured - p.refunded, "refund")?;
        p.refunded += body.modification_amount.value;
        p.record(PaymentEventName::Refunded, body.modification_amount.value, Some(&key), now);
        Ok(axum::Json(p.modification()))
    })
}

async fn force_approve(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<StatusCode> {
    if !state.config.test_mode {
        return Err(ApiError::not_found("the test endpoints exist only in the test environment"));
    }
    let msn = crate::extract::msn(&headers)?;
    let body: ForceApprove = if body.is_empty() { ForceApprove::default() } else { parse_json(&body)? };
    let now = state.now();
    with_payment(&state, &msn, &reference, |p| {
        if let Some(token) = &body.token {
            if *token != p.token {
                return Err(ApiError::invalid("token", "does not match the token in this payment's redirectUrl"));
            }
        }
        if let (Some(expected), Some(given)) = (&p.phone_number, phone_number(body.customer.as_ref())) {
            if *expected != given {
                return Err(ApiError::invalid(
                    "customer.phoneNumber",
                    "is not the customer the payment was created for",
                ));
            }
        }
        if p.state != PaymentState::Created {
            return Err(state_conflict(p, "approved"));
        }
        p.state = PaymentState::Authorized;
        p.authorized = p.amount.value;
        p.record(PaymentEventName::Authorized, p.amount.value, None, now);
        Ok(StatusCode::OK)
    })
}

/// What the landing page shows of a payment, read after any change it made.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub msn: String,
    pub amount: u64,
    pub currency: String,
    pub description: Option<String>,
    pub state: PaymentState,
    pub return_url: Option<String>,
}

/// The payment of a landing link, `reference` and its `token`, after applying its expiry; with
/// `decision`, the customer's answer applied (only to a payment still CREATED, else 409). A
/// reference no merchant has is a 404; one whose payments all have another token a 403.
pub(crate) fn landing(state: &AppState, reference: &str, token: &str, decision: Option<Decision>) -> ApiResult<Asked> {
    let now = state.now();
    let mut store = lock(&state.epayment);
    let mut known = false;
    let found = store.payments.iter_mut().find(|((_, r), p)| {
        known |= r == reference;
        r == reference && crate::landing::same_token(&p.token, token)
    });
    let Some(((msn, _), payment)) = found else {
        return Err(if known {
            ApiError::forbidden("the link's token does not match this payment; open the redirectUrl as it was given")
        } else {
            ApiError::not_found(format!("no payment with reference {reference}"))
        });
    };
    let msn = msn.clone();
    let before = payment.events.len();
    payment.expire_if_due(now);
    let outcome = match decision {
        None => Ok(()),
        Some(_) if payment.state != PaymentState::Created => Err(ApiError::conflict(format!(
            "this payment is {} and no longer waits for an answer",
            payment.state
        ))),
        Some(Decision::Approve) => {
            payment.state = PaymentState::Authorized;
            payment.authorized = payment.amount.value;
            payment.record(PaymentEventName::Authorized, payment.amount.value, None, now);
            Ok(())
        }
        Some(Decision::Reject) => {
            payment.state = PaymentState::Aborted;
            payment.record(PaymentEventName::Aborted, payment.amount.value, None, now);
            Ok(())
        }
    };
    publish(state, &msn, &payment.events[before..]);
    outcome?;
    Ok(Asked {
        msn,
        amount: payment.amount.value,
        currency: payment.amount.currency.to_string(),
        description: payment.description.clone(),
        state: payment.state.clone(),
        return_url: payment.return_url.clone(),
    })
}

// Payments made by Checkout sessions ([`crate::checkout`]): the real Checkout v3 creates an
// ePayment payment with the session's reference and amount when the customer starts paying, so
// the sandbox keeps them here too, where the ePayment API captures, refunds and cancels them.

/// What a Checkout session shows of its payment: state, amount and aggregate.
pub(crate) struct CheckoutView {
    pub(crate) state: PaymentState,
    pub(crate) amount: Amount,
    pub(crate) aggregate: Aggregate,
}

impl Store {
    /// Whether the merchant has a payment with this reference.
    pub(crate) fn contains(&self, msn: &str, reference: &str) -> bool {
        self.payments.contains_key(&(msn.to_owned(), reference.to_owned()))
    }
}

/// Creates the payment of a Checkout session (`CREATED`, with its event and webhook); a 409
/// when the merchant already has a payment with that reference.
pub(crate) fn create_for_checkout(
    state: &AppState,
    msn: &str,
    reference: Reference,
    amount: Amount,
    landing_url: String,
) -> ApiResult<()> {
    let now = state.now();
    let expires_at = now + chrono::Duration::from_std(state.config.epayment_expiry).unwrap_or(chrono::Duration::minutes(5));
    let key = reference.to_string();
    let mut store = lock(&state.epayment);
    if store.contains(msn, &key) {
        return Err(ApiError::conflict(format!("reference {key} is already used by another payment of this merchant")));
    }
    let mut payment = Payment {
        reference,
        psp_reference: uuid::Uuid::new_v4().simple().to_string(),
        state: PaymentState::Created,
        amount,
        authorized: 0,
        captured: 0,
        refunded: 0,
        cancelled: 0,
        expires_at,
        token: uuid::Uuid::new_v4().simple().to_string(),
        phone_number: None,
        payment_method: PaymentMethodType::Wallet,
        redirect_url: landing_url,
        // The Checkout landing page answers for this payment and sends the browser on itself.
        return_url: None,
        description: None,
        events: Vec::new(),
    };
    payment.record(PaymentEventName::Created, payment.amount.value, None, now);
    publish(state, msn, &payment.events);
    store.payments.insert((msn.to_owned(), key), payment);
    Ok(())
}

/// The customer's answer to a Checkout session's payment: approved, the whole amount is
/// `AUTHORIZED`; rejected, the payment is `ABORTED`. A 409 when it is no longer `CREATED`.
pub(crate) fn answer_for_checkout(state: &AppState, msn: &str, reference: &str, approve: bool) -> ApiResult<()> {
    let now = state.now();
    with_payment(state, msn, reference, |p| {
        if p.state != PaymentState::Created {
            return Err(state_conflict(p, if approve { "approved" } else { "rejected" }));
        }
        if approve {
            p.state = PaymentState::Authorized;
            p.authorized = p.amount.value;
            p.record(PaymentEventName::Authorized, p.amount.value, None, now);
        } else {
            p.state = PaymentState::Aborted;
            p.record(PaymentEventName::Aborted, p.amount.value, None, now);
        }
        Ok(())
    })
}

/// A Checkout session's payment as it is now (after its expiry, if due), or `None`.
pub(crate) fn view_for_checkout(state: &AppState, msn: &str, reference: &str) -> Option<CheckoutView> {
    with_payment(state, msn, reference, |p| {
        Ok(CheckoutView { state: p.state.clone(), amount: p.amount.clone(), aggregate: p.aggregate() })
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipps_epayment::types::Currency;

    #[test]
    fn an_unapproved_payment_expires_once_with_the_time_it_expired() {
        let start = Utc::now();
        let mut p = Payment {
            reference: "order-0001".parse().unwrap(),
            psp_reference: "p".into(),
            amount: Amount { currency: Currency::Nok, value: 1000 },
            state: PaymentState::Created,
            authorized: 0,
            captured: 0,
            refunded: 0,
            cancelled: 0,
            expires_at: start + chrono::Duration::minutes(5),
            token: "t".into(),
            phone_number: None,
            payment_method: PaymentMethodType::Wallet,
            redirect_url: "http://localhost/".into(),
            return_url: None,
            description: None,
            events: Vec::new(),
        };
        p.expire_if_due(start + chrono::Duration::minutes(4));
        assert_eq!(p.state, PaymentState::Created);
        p.expire_if_due(start + chrono::Duration::minutes(6));
        p.expire_if_due(start + chrono::Duration::minutes(7));
        assert_eq!(p.state, PaymentState::Expired);
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].timestamp, start + chrono::Duration::minutes(5));
    }
}
