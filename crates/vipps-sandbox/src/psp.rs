//! PSP API v3: initiate a payment, the test-only force approve, the batch status update and
//! payment details.
//!
//! Every call needs `Merchant-Serial-Number` and `Psp-Id` (both required by the spec); a
//! missing one is a 400 naming the header. Payments belong to one PSP and one merchant: the
//! same `pspTransactionId` seen with another `Psp-Id` or another merchant is unknown (404).
//!
//! Initiation checks, beyond the generated types: `amount` at least 1, `currency` NOK,
//! `paymentText` at most 100 characters (the reference's limit), both URLs absolute http(s),
//! `customerMobileNumber` present when `skipLandingPage` is set, and a `pspTransactionId`
//! free of whitespace and `/ ? # % \` (the spec's pattern is unanchored, so it alone lets
//! nearly anything through). A `pspTransactionId` or `merchantOrderId` the merchant already
//! used with this PSP is a 400 naming it (the spec documents no 409 here); another merchant
//! may use the same ones. The `vippsRedirectUrl` starts with the sandbox's own base URL
//! ([`crate::state::Config::base_url`]), never with the request's `Host`.
//!
//! # The life of a payment
//!
//! The PSP API differs from the other payment APIs: Vipps does not move money itself. It
//! gets the customer's approval and hands a card network token to the PSP's
//! `makePaymentUrl`; the PSP charges the card and reports each outcome back through
//! `updatestatus`. The sandbox keeps these states:
//!
//! | state | reached by | what can be reported next |
//! |---|---|---|
//! | `Initiated` | `POST /psp/v3/psppayments/init` | `CANCELLED` |
//! | `Accepted` | force approve (the customer accepted; the token would now go to `makePaymentUrl`) | `RESERVED`, `CAPTURED` (direct capture), `CANCELLED` |
//! | `Reserved` | a successful `RESERVED` update | `CAPTURED` (partial captures add up), `CANCELLED` (the rest) |
//! | `Cancelled` | a successful `CANCELLED` update | nothing but refunds of what was captured |
//!
//! `REFUNDED` is allowed whenever some captured amount is not yet refunded. An update with
//! `operationStatus: FAILED` is written to the history with `operationSuccess: false` and
//! changes no totals. An update that does not fit the state (capturing more than is open,
//! refunding more than was captured, reserving twice, anything on an unknown transaction) is
//! a 400 naming the field at fault, and then no update of that batch is applied: the batch
//! is all or nothing.
//!
//! The details' `transactionSummary`: `remainingAmountToCapture` is the open amount of an
//! accepted payment (the reserved amount once reserved) minus what was captured, and 0
//! before the customer accepted or after a cancellation; `remainingAmountToRefund` is
//! captured minus refunded. `transactionLogHistory` lists the reported operations, oldest
//! first, stamped with the sandbox clock.
//!
//! Differences from the real service, on purpose:
//! - status updates take effect at once, not in a nightly batch;
//! - force approve makes the payment `Accepted` but sends no `makePaymentUrl` callback (the
//!   sandbox never calls out); a test plays the PSP by reporting `RESERVED`/`CAPTURED` itself;
//! - `vippsRedirectUrl` points at the sandbox and carries the token that force approve
//!   wants, but no landing page is served there;
//! - errors are `application/problem+json` (as everywhere in the sandbox) rather than the
//!   spec's JSON array of `{errorCode, errorMessage, contextId}`; `vipps_core::Problem` reads
//!   both.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use vipps_psp::types::{
    ForceApproveRequest, InitiatePaymentRequest, PaymentDetailsRepresentation, PaymentInitiationRepresentation,
    PaymentStatus, PaymentTransactionDetails, PaymentTransactionDetailsOperation, Response, ResponseResponseInfo,
    TransactionInfo, TransactionInfoOperationStatus, TransactionInfoStatus, TransactionSummary,
};

use crate::extract::{check_url, parse_json, Json, Msn, Path};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The longest `paymentText` the PSP reference allows (the OpenAPI file omits the limit).
const MAX_PAYMENT_TEXT: usize = 100;

/// Where a payment stands, as the sandbox sees it (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Created; waiting for the customer.
    Initiated,
    /// The customer accepted; the PSP may reserve or capture.
    Accepted,
    /// The PSP reported a reservation.
    Reserved,
    /// The PSP reported a cancellation.
    Cancelled,
}

#[derive(Debug, Clone)]
struct Payment {
    merchant_order_id: String,
    amount: i64,
    payment_text: Option<String>,
    customer_mobile_number: Option<String>,
    token: String,
    state: PaymentState,
    reserved: i64,
    captured: i64,
    refunded: i64,
    log: Vec<PaymentTransactionDetails>,
}

impl Payment {
    /// What may still be captured.
    fn open_to_capture(&self) -> i64 {
        match self.state {
            PaymentState::Accepted => self.amount - self.captured,
            PaymentState::Reserved => self.reserved - self.captured,
            PaymentState::Initiated | PaymentState::Cancelled => 0,
        }
    }

    fn open_to_refund(&self) -> i64 {
        self.captured - self.refunded
    }
}

/// PSP payments, by (`Psp-Id`, merchant serial number, `pspTransactionId`).
#[derive(Debug, Default)]
pub struct Store {
    payments: HashMap<(String, String, String), Payment>,
}

impl Store {
    /// How many payments exist, for tests that check a rejected request created nothing.
    pub fn payment_count(&self) -> usize {
        self.payments.len()
    }

    /// The state of a merchant's payment, for tests that look inside.
    pub fn payment_state(&self, psp_id: &str, msn: &str, psp_transaction_id: &str) -> Option<PaymentState> {
        self.find(psp_id, msn, psp_transaction_id).map(|p| p.state)
    }

    fn find(&self, psp_id: &str, msn: &str, id: &str) -> Option<&Payment> {
        self.payments.get(&(psp_id.to_owned(), msn.to_owned(), id.to_owned()))
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/psp/v3/psppayments/init", post(initiate))
        .route("/psp/v3/psppayments/updatestatus", post(update_status))
        .route("/psp/v3/psppayments/{pspTransactionId}/details", get(details))
        .route("/psp/v3/integration-test/psppayments/{pspTransactionId}/approve", post(force_approve))
}

/// Reads the required `Psp-Id` header.
fn psp_id(headers: &HeaderMap) -> ApiResult<String> {
    let value = headers
        .get("psp-id")
        .ok_or_else(|| ApiError::invalid("Psp-Id", "the header is required"))?
        .to_str()
        .map_err(|_| ApiError::invalid("Psp-Id", "must be visible ASCII"))?
        .trim();
    if value.is_empty() {
        return Err(ApiError::invalid("Psp-Id", "must not be empty"));
    }
    Ok(value.to_owned())
}

fn check_payment_text(field: &str, text: Option<&str>) -> ApiResult<()> {
    match text {
        Some(t) if t.chars().count() > MAX_PAYMENT_TEXT => {
            Err(ApiError::invalid(field, format!("at most {MAX_PAYMENT_TEXT} characters")))
        }
        _ => Ok(()),
    }
}

fn check_initiate(body: &InitiatePaymentRequest) -> ApiResult<()> {
    // The spec's pattern `[a-z0-9]` is unanchored (any string with one such character
    // passes); at least keep the id usable as a path segment of the details call.
    if body.psp_transaction_id.chars().any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%' | '\\')) {
        return Err(ApiError::invalid("pspTransactionId", "must not contain whitespace or / ? # % \\"));
    }
    if body.amount < 1 {
        return Err(ApiError::invalid("amount", "must be a positive amount in minor units (øre)"));
    }
    if body.currency != "NOK" {
        return Err(ApiError::invalid("currency", "only NOK is supported"));
    }
    check_url("pspRedirectUrl", &body.psp_redirect_url)?;
    check_url("makePaymentUrl", &body.make_payment_url)?;
    check_payment_text("paymentText", body.payment_text.as_deref())?;
    if body.skip_landing_page && body.customer_mobile_number.is_none() {
        return Err(ApiError::invalid("customerMobileNumber", "required when skipLandingPage is true"));
    }
    Ok(())
}

async fn initiate(
    State(state): State<AppState>,
    Msn(msn): Msn,
    headers: HeaderMap,
    Json(body): Json<InitiatePaymentRequest>,
) -> ApiResult<axum::Json<PaymentInitiationRepresentation>> {
    let psp = psp_id(&headers)?;
    check_initiate(&body)?;
    let id: String = body.psp_transaction_id.to_string();
    let order_id: String = body.merchant_order_id.to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    {
        let mut store = lock(&state.psp);
        if store.payments.contains_key(&(psp.clone(), msn.clone(), id.clone())) {
            return Err(ApiError::invalid("pspTransactionId", "already used for another payment of this merchant"));
        }
        if store.payments.iter().any(|((p, m, _), pay)| *p == psp && *m == msn && pay.merchant_order_id == order_id) {
            return Err(ApiError::invalid("merchantOrderId", "already used for another payment of this merchant"));
        }
        store.payments.insert(
            (psp, msn.clone(), id.clone()),
            Payment {
                merchant_order_id: order_id.clone(),
                amount: i64::from(body.amount),
                payment_text: body.payment_text.clone(),
                customer_mobile_number: body.customer_mobile_number.as_ref().map(|m| m.to_string()),
                token: token.clone(),
                state: PaymentState::Initiated,
                reserved: 0,
                captured: 0,
                refunded: 0,
                log: Vec::new(),
            },
        );
    }
    Ok(axum::Json(PaymentInitiationRepresentation {
        merchant_order_id: order_id.parse().ok(),
        // Built from the sandbox's own base URL, never from the request's `Host` header.
        vipps_redirect_url: Some(format!("{}/psp/v3/landing/{id}?token={token}", state.base_url())),
        psp_transaction_id: Some(id),
    }))
}

async fn force_approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<StatusCode> {
    if !state.config.test_mode {
        return Err(ApiError::not_found("the integration-test endpoints exist only in the test environment"));
    }
    let msn = crate::extract::msn(&headers)?;
    let psp = psp_id(&headers)?;
    let body: ForceApproveRequest = parse_json(&body)?;
    let mut store = lock(&state.psp);
    let payment = store
        .payments
        .get_mut(&(psp, msn, id.clone()))
        .ok_or_else(|| ApiError::not_found(format!("no payment with pspTransactionId {id}")))?;
    if body.token != payment.token {
        return Err(ApiError::invalid("token", "does not match the token in this payment's vippsRedirectUrl"));
    }
    if let Some(expected) = &payment.customer_mobile_number {
        if body.customer_phone_number.as_str() != expected {
            return Err(ApiError::invalid(
                "customerPhoneNumber",
                "is not the customerMobileNumber the payment was started for",
            ));
        }
    }
    if payment.state != PaymentState::Initiated {
        return Err(ApiError::bad_request(format!(
            "the payment is not waiting for the customer (it is {:?})",
            payment.state
        )));
    }
    payment.state = PaymentState::Accepted;
    Ok(StatusCode::OK)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn details_of(id: &str, p: &Payment) -> PaymentDetailsRepresentation {
    PaymentDetailsRepresentation {
        merchant_order_id: p.merchant_order_id.parse().ok(),
        psp_transaction_id: Some(id.to_owned()),
        transaction_log_history: p.log.clone(),
        transaction_summary: Some(TransactionSummary {
            captured_amount: Some(to_u32(p.captured)),
            refunded_amount: Some(to_u32(p.refunded)),
            remaining_amount_to_capture: Some(to_u32(p.open_to_capture())),
            remaining_amount_to_refund: Some(to_u32(p.open_to_refund())),
        }),
    }
}

async fn details(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<PaymentDetailsRepresentation>> {
    let psp = psp_id(&headers)?;
    let store = lock(&state.psp);
    let payment = store
        .find(&psp, &msn, &id)
        .ok_or_else(|| ApiError::not_found(format!("no payment with pspTransactionId {id}")))?;
    Ok(axum::Json(details_of(&id, payment)))
}

/// Applies one status update to a payment (a copy: the caller commits only if the whole
/// batch applies). `at` names the entry, as in `transactions[2]`.
fn apply(payment: &mut Payment, t: &TransactionInfo, at: &str, now: &str) -> ApiResult<()> {
    let field = |name: &str| format!("{at}.{name}");
    let amount = i64::from(t.amount);
    if amount < 0 {
        return Err(ApiError::invalid(field("amount"), "must not be negative"));
    }
    if t.currency != "NOK" {
        return Err(ApiError::invalid(field("currency"), "only NOK is supported"));
    }
    check_payment_text(&field("paymentText"), t.payment_text.as_deref())?;
    let operation = match t.status {
        TransactionInfoStatus::Reserved => PaymentTransactionDetailsOperation::Reserved,
        TransactionInfoStatus::Captured => PaymentTransactionDetailsOperation::Captured,
        TransactionInfoStatus::Cancelled => PaymentTransactionDetailsOperation::Cancelled,
        TransactionInfoStatus::Refunded => PaymentTransactionDetailsOperation::Refunded,
    };
    let success = t.operation_status == TransactionInfoOperationStatus::Success;
    if success {
        let status = field("status");
        let amount_field = field("amount");
        match t.status {
            TransactionInfoStatus::Reserved => {
                if payment.state != PaymentState::Accepted || payment.captured > 0 {
                    return Err(ApiError::invalid(
                        status,
                        format!(
                            "RESERVED needs a payment the customer accepted and nothing captured yet (it is {:?})",
                            payment.state
                        ),
                    ));
                }
                if amount < 1 || amount > payment.amount {
                    return Err(ApiError::invalid(
                        amount_field,
                        format!("must be between 1 and the payment's amount {}", payment.amount),
                    ));
                }
                payment.state = PaymentState::Reserved;
                payment.reserved = amount;
            }
            TransactionInfoStatus::Captured => {
                if !matches!(payment.state, PaymentState::Accepted | PaymentState::Reserved) {
                    return Err(ApiError::invalid(
                        status,
                        format!("CAPTURED needs an accepted or reserved payment (it is {:?})", payment.state),
                    ));
                }
                let open = payment.open_to_capture();
                if amount < 1 || amount > open {
                    return Err(ApiError::invalid(
                        amount_field,
                        format!("must be between 1 and the open amount {open}"),
                    ));
                }
                payment.captured += amount;
            }
            TransactionInfoStatus::Cancelled => {
                let open = match payment.state {
                    PaymentState::Initiated => payment.amount,
                    PaymentState::Accepted | PaymentState::Reserved => payment.open_to_capture(),
                    PaymentState::Cancelled => 0,
                };
                if payment.state == PaymentState::Cancelled || open == 0 {
                    return Err(ApiError::invalid(
                        status,
                        "nothing is left to cancel (already cancelled or fully captured; refund instead)",
                    ));
                }
                if amount > open {
                    return Err(ApiError::invalid(amount_field, format!("must be at most the open amount {open}")));
                }
                payment.state = PaymentState::Cancelled;
            }
            TransactionInfoStatus::Refunded => {
                let open = payment.open_to_refund();
                if open == 0 {
                    return Err(ApiError::invalid(status, "nothing captured is left to refund"));
                }
                if amount < 1 || amount > open {
                    return Err(ApiError::invalid(
                        amount_field,
                        format!("must be between 1 and the captured, not yet refunded amount {open}"),
                    ));
                }
                payment.refunded += amount;
            }
        }
    }
    payment.log.push(PaymentTransactionDetails {
        amount: Some(t.amount),
        operation: Some(operation),
        operation_success: Some(success),
        payment_text: t.payment_text.clone().or_else(|| payment.payment_text.clone()),
        time_stamp: Some(now.to_owned()),
    });
    Ok(())
}

async fn update_status(
    State(state): State<AppState>,
    Msn(msn): Msn,
    headers: HeaderMap,
    Json(body): Json<PaymentStatus>,
) -> ApiResult<axum::Json<Response>> {
    let psp = psp_id(&headers)?;
    let now = state.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut store = lock(&state.psp);
    // Work on copies, so that a rejected entry leaves every payment as it was.
    let mut changed: HashMap<String, Payment> = HashMap::new();
    for (i, t) in body.transactions.iter().enumerate() {
        let at = format!("transactions[{i}]");
        let id = &t.psp_transaction_id;
        if !changed.contains_key(id) {
            let payment = store.find(&psp, &msn, id).ok_or_else(|| {
                ApiError::invalid(format!("{at}.pspTransactionId"), "no such payment for this PSP and merchant")
            })?;
            changed.insert(id.clone(), payment.clone());
        }
        let payment = changed.get_mut(id).expect("inserted above");
        apply(payment, t, &at, &now)?;
    }
    for (id, payment) in changed {
        store.payments.insert((psp.clone(), msn.clone(), id), payment);
    }
    Ok(axum::Json(Response {
        response_info: Some(ResponseResponseInfo {
            response_code: Some("9000".into()),
            response_message: Some("SUCCESS".into()),
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> Payment {
        Payment {
            merchant_order_id: "order-1".into(),
            amount: 1000,
            payment_text: Some("socks".into()),
            customer_mobile_number: None,
            token: "t".into(),
            state: PaymentState::Accepted,
            reserved: 0,
            captured: 0,
            refunded: 0,
            log: Vec::new(),
        }
    }

    fn update(status: &str, amount: i32) -> TransactionInfo {
        serde_json::from_value(serde_json::json!({
            "pspTransactionId": "abc", "status": status, "amount": amount
        }))
        .unwrap()
    }

    #[test]
    fn reserve_capture_refund_cancel_add_up() {
        let mut p = payment();
        apply(&mut p, &update("RESERVED", 800), "t", "now").unwrap();
        assert_eq!(p.open_to_capture(), 800);
        apply(&mut p, &update("CAPTURED", 300), "t", "now").unwrap();
        assert_eq!((p.captured, p.open_to_capture()), (300, 500));
        let err = apply(&mut p, &update("CAPTURED", 600), "t", "now").unwrap_err();
        assert_eq!(err.fields[0].0, "t.amount");
        apply(&mut p, &update("CANCELLED", 500), "t", "now").unwrap();
        assert_eq!((p.state, p.open_to_capture()), (PaymentState::Cancelled, 0));
        apply(&mut p, &update("REFUNDED", 300), "t", "now").unwrap();
        assert_eq!(p.open_to_refund(), 0);
        let err = apply(&mut p, &update("REFUNDED", 1), "t", "now").unwrap_err();
        assert_eq!(err.fields[0].0, "t.status");
        assert_eq!(p.log.len(), 4);
    }

    #[test]
    fn failed_operations_are_logged_without_effect() {
        let mut p = payment();
        let mut t = update("RESERVED", 1000);
        t.operation_status = TransactionInfoOperationStatus::Failed;
        apply(&mut p, &t, "t", "now").unwrap();
        assert_eq!(p.state, PaymentState::Accepted);
        assert_eq!(p.log[0].operation_success, Some(false));
    }

    #[test]
    fn urls_must_be_absolute() {
        assert!(check_url("u", "https://example.com/x").is_ok());
        assert!(check_url("u", "http://127.0.0.1:8080").is_ok());
        assert!(check_url("u", "example.com").is_err());
        assert!(check_url("u", "https://").is_err());
        assert!(check_url("u", "https://a b").is_err());
    }
}
