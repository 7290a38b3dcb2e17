//! The ePayment API v1 through the facade (`vipps.epayment()`) against the sandbox: a payment
//! from creation to refund with its aggregate, every operation, the amount checks (a 400
//! naming the field, nothing changed), idempotent replays, cancellation, expiry on the
//! sandbox clock, and partner keys (`vipps.merchant(msn).epayment()`).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use vipps::Vipps;
use vipps_epayment::types::{
    Amount, CaptureModificationRequest, CreatePaymentRequest, Currency, ForceApprove, GetPaymentResponse,
    PaymentEventName as Event, RefundModificationRequest, State,
};
use vipps_sandbox::Sandbox;

fn create_body(reference: &str, value: u64) -> CreatePaymentRequest {
    serde_json::from_value(json!({
        "amount": {"currency": "NOK", "value": value},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": "4791234567"},
        "reference": reference,
        "returnUrl": "https://shop.example.com/return?ref=1",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "Two pairs of socks"
    }))
    .expect("a valid body")
}

fn nok(value: u64) -> Amount {
    Amount { currency: Currency::Nok, value }
}

async fn create(vipps: &Vipps, reference: &str, value: u64) -> Result<String, vipps_core::Error> {
    let created = vipps.epayment().create_payment().body(create_body(reference, value)).send().await?.into_inner();
    assert_eq!(created.reference.as_str(), reference);
    Ok(created.redirect_url.expect("a redirect URL"))
}

async fn get(vipps: &Vipps, reference: &str) -> GetPaymentResponse {
    vipps.epayment().get_payment().reference(reference).send().await.expect("the payment").into_inner()
}

async fn approve(vipps: &Vipps, reference: &str) -> Result<(), vipps_core::Error> {
    vipps.epayment().force_approve().reference(reference).body(ForceApprove::default()).send().await.map(|_| ())
}

async fn capture(
    vipps: &Vipps,
    reference: &str,
    value: u64,
) -> Result<vipps_epayment::types::ModificationResponse, vipps_core::Error> {
    let body = CaptureModificationRequest { modification_amount: nok(value) };
    Ok(vipps.epayment().capture_payment().reference(reference).body(body).send().await?.into_inner())
}

async fn refund(
    vipps: &Vipps,
    reference: &str,
    value: u64,
) -> Result<vipps_epayment::types::ModificationResponse, vipps_core::Error> {
    let body = RefundModificationRequest { modification_amount: nok(value) };
    Ok(vipps.epayment().refund_payment().reference(reference).body(body).send().await?.into_inner())
}

/// (authorized, captured, refunded, cancelled).
fn amounts(p: &GetPaymentResponse) -> (u64, u64, u64, u64) {
    let a = &p.aggregate;
    (a.authorized_amount.value, a.captured_amount.value, a.refunded_amount.value, a.cancelled_amount.value)
}

/// The status and the field a problem names.
fn field_of(err: &vipps_core::Error) -> (Option<u16>, String) {
    let name = err
        .problem()
        .and_then(|p| p.extra_details.as_ref())
        .and_then(|d| d[0]["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    (err.status(), name)
}

async fn event_names(vipps: &Vipps, reference: &str) -> Vec<(Event, u64)> {
    let log = vipps.epayment().get_payment_event_log().reference(reference).send().await.expect("the log").into_inner();
    log.into_iter().map(|e| (e.name.expect("a name"), e.amount.value)).collect()
}

#[tokio::test]
async fn a_payment_is_created_approved_captured_and_refunded_within_its_aggregate() {
    let (_sandbox, vipps) = support::start().await;
    let redirect = create(&vipps, "order-1001", 10_000).await.unwrap();
    assert!(redirect.starts_with(_sandbox.base_url()), "{redirect}");
    let p = get(&vipps, "order-1001").await;
    assert_eq!((p.state.clone(), amounts(&p)), (State::Created, (0, 0, 0, 0)));
    assert_eq!(p.amount, nok(10_000));

    // Nothing can be captured before the customer approves.
    assert_eq!(capture(&vipps, "order-1001", 100).await.unwrap_err().status(), Some(409));
    approve(&vipps, "order-1001").await.unwrap();
    let p = get(&vipps, "order-1001").await;
    assert_eq!((p.state.clone(), amounts(&p)), (State::Authorized, (10_000, 0, 0, 0)));

    let m = capture(&vipps, "order-1001", 6_000).await.unwrap();
    assert_eq!(m.aggregate.captured_amount.value, 6_000);
    // More than the 4,000 left: a 400 naming the amount, and nothing changes.
    let err = capture(&vipps, "order-1001", 4_001).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "modificationAmount.value".into()), "{err}");
    assert_eq!(amounts(&get(&vipps, "order-1001").await), (10_000, 6_000, 0, 0));
    capture(&vipps, "order-1001", 4_000).await.unwrap();

    refund(&vipps, "order-1001", 2_500).await.unwrap();
    let err = refund(&vipps, "order-1001", 7_501).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "modificationAmount.value".into()), "{err}");
    let m = refund(&vipps, "order-1001", 7_500).await.unwrap();
    assert_eq!((m.state, m.aggregate.refunded_amount.value), (State::Authorized, 10_000));
    assert_eq!(refund(&vipps, "order-1001", 1).await.unwrap_err().status(), Some(400));
    // Fully captured: nothing is left to cancel.
    let cancel = vipps.epayment().cancel_payment().reference("order-1001").send().await;
    assert_eq!(cancel.unwrap_err().status(), Some(409));

    assert_eq!(
        event_names(&vipps, "order-1001").await,
        [
            (Event::Created, 10_000),
            (Event::Authorized, 10_000),
            (Event::Captured, 6_000),
            (Event::Captured, 4_000),
            (Event::Refunded, 2_500),
            (Event::Refunded, 7_500),
        ]
    );
}

#[tokio::test]
async fn a_capture_in_another_currency_names_the_currency() {
    let (sandbox, vipps) = support::start().await;
    create(&vipps, "order-cur-1", 1_000).await.unwrap();
    approve(&vipps, "order-cur-1").await.unwrap();
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/epayment/v1/payments/order-cur-1/capture")
            .await
            .header("Idempotency-Key", "cur-1")
            .json(&json!({"modificationAmount": {"currency": "EUR", "value": 100}})),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "modificationAmount.currency"), "{answer}");
    // A capture of nothing is refused as well.
    let err = capture(&vipps, "order-cur-1", 0).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "modificationAmount.value".into()));
}

#[tokio::test]
async fn create_and_capture_replay_with_the_same_idempotency_key() {
    let (sandbox, vipps) = support::start().await;
    let first = vipps
        .epayment()
        .create_payment()
        .idempotency_key("create-order-2001")
        .body(create_body("order-2001", 5_000))
        .send()
        .await
        .unwrap();
    let again = vipps
        .epayment()
        .create_payment()
        .idempotency_key("create-order-2001")
        .body(create_body("order-2001", 5_000))
        .send()
        .await
        .unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(first.redirect_url, again.redirect_url);
    assert_eq!(sandbox.state().epayment.lock().unwrap().payment_count(), 1);
    // The same reference under a new key is a conflict.
    assert_eq!(create(&vipps, "order-2001", 5_000).await.unwrap_err().status(), Some(409));

    approve(&vipps, "order-2001").await.unwrap();
    let body = CaptureModificationRequest { modification_amount: nok(1_000) };
    for _ in 0..3 {
        let m = vipps
            .epayment()
            .capture_payment()
            .reference("order-2001")
            .idempotency_key("cap-1")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(m.aggregate.captured_amount.value, 1_000, "a replay captures nothing more");
    }
    // The same key with another amount is a conflict.
    let other = CaptureModificationRequest { modification_amount: nok(2_000) };
    let err = vipps
        .epayment()
        .capture_payment()
        .reference("order-2001")
        .idempotency_key("cap-1")
        .body(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    let log = vipps.epayment().get_payment_event_log().reference("order-2001").send().await.unwrap().into_inner();
    let captures: Vec<_> = log.iter().filter(|e| e.name == Some(Event::Captured)).collect();
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].idempotency_key.as_deref().map(String::as_str), Some("cap-1"));
}

#[tokio::test]
async fn cancelling_terminates_or_releases_the_rest() {
    let (_sandbox, vipps) = support::start().await;
    // Before approval: terminated.
    create(&vipps, "order-3001", 3_000).await.unwrap();
    let m = vipps.epayment().cancel_payment().reference("order-3001").send().await.unwrap().into_inner();
    assert_eq!(m.state, State::Terminated);
    assert_eq!(approve(&vipps, "order-3001").await.unwrap_err().status(), Some(409));

    // Authorized, nothing captured: terminated with the whole amount cancelled.
    create(&vipps, "order-3002", 3_000).await.unwrap();
    approve(&vipps, "order-3002").await.unwrap();
    vipps.epayment().cancel_payment().reference("order-3002").send().await.unwrap();
    let p = get(&vipps, "order-3002").await;
    assert_eq!((p.state.clone(), amounts(&p)), (State::Terminated, (3_000, 0, 0, 3_000)));
    assert_eq!(capture(&vipps, "order-3002", 1).await.unwrap_err().status(), Some(409));

    // Partly captured: the rest is cancelled, the payment stays authorized and refundable.
    create(&vipps, "order-3003", 3_000).await.unwrap();
    approve(&vipps, "order-3003").await.unwrap();
    capture(&vipps, "order-3003", 1_000).await.unwrap();
    vipps.epayment().cancel_payment().reference("order-3003").send().await.unwrap();
    let p = get(&vipps, "order-3003").await;
    assert_eq!((p.state.clone(), amounts(&p)), (State::Authorized, (3_000, 1_000, 0, 2_000)));
    let err = capture(&vipps, "order-3003", 1).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "modificationAmount.value".into()));
    refund(&vipps, "order-3003", 1_000).await.unwrap();
    assert_eq!(event_names(&vipps, "order-3003").await.last(), Some(&(Event::Refunded, 1_000)));
}

#[tokio::test]
async fn an_unapproved_payment_expires_on_the_sandbox_clock() {
    let (sandbox, vipps) = support::start().await;
    create(&vipps, "order-4001", 2_000).await.unwrap();
    sandbox.advance_clock(Duration::from_secs(4 * 60)).unwrap();
    assert_eq!(get(&vipps, "order-4001").await.state, State::Created);
    sandbox.advance_clock(Duration::from_secs(61)).unwrap();
    assert_eq!(get(&vipps, "order-4001").await.state, State::Expired);
    assert_eq!(approve(&vipps, "order-4001").await.unwrap_err().status(), Some(409));
    assert_eq!(vipps.epayment().cancel_payment().reference("order-4001").send().await.unwrap_err().status(), Some(409));
    assert_eq!(event_names(&vipps, "order-4001").await, [(Event::Created, 2_000), (Event::Expired, 2_000)]);

    // An approved payment does not expire.
    create(&vipps, "order-4002", 2_000).await.unwrap();
    approve(&vipps, "order-4002").await.unwrap();
    sandbox.advance_clock(Duration::from_secs(3600)).unwrap();
    assert_eq!(get(&vipps, "order-4002").await.state, State::Authorized);
}

#[tokio::test]
async fn force_approve_checks_the_token_and_exists_only_in_test_mode() {
    let (_sandbox, vipps) = support::start().await;
    let redirect = create(&vipps, "order-5001", 2_000).await.unwrap();
    let token = redirect.split("token=").nth(1).expect("a token in the redirect URL").to_owned();
    let wrong = ForceApprove { customer: None, token: Some("not-the-token".into()) };
    let err = vipps.epayment().force_approve().reference("order-5001").body(wrong).send().await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "token".into()));
    let right = ForceApprove { customer: None, token: Some(token) };
    vipps.epayment().force_approve().reference("order-5001").body(right).send().await.unwrap();
    assert_eq!(get(&vipps, "order-5001").await.state, State::Authorized);

    let production = Sandbox::builder().test_mode(false).start().await.unwrap();
    let vipps = support::client(&production);
    create(&vipps, "order-5002", 2_000).await.unwrap();
    assert_eq!(approve(&vipps, "order-5002").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn payments_belong_to_their_merchant_and_bad_bodies_change_nothing() {
    let (sandbox, vipps) = support::start().await;
    create(&vipps, "order-6001", 2_000).await.unwrap();
    let other = vipps.merchant("654321").expect("a merchant handle");
    let err = other.epayment().get_payment().reference("order-6001").send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    // The partner handle creates under its own merchant; the reference is free there.
    other.epayment().create_payment().body(create_body("order-6001", 700)).send().await.unwrap();
    let p = other.epayment().get_payment().reference("order-6001").send().await.unwrap().into_inner();
    assert_eq!(p.amount.value, 700);
    assert_eq!(get(&vipps, "order-6001").await.amount.value, 2_000);

    let before = sandbox.state().epayment.lock().unwrap().payment_count();
    let mut body = serde_json::to_value(create_body("order-6002", 2_000)).unwrap();
    body.as_object_mut().unwrap().remove("returnUrl");
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/epayment/v1/payments")
            .await
            .header("Idempotency-Key", "bad-1")
            .json(&body),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "returnUrl"), "{answer}");
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/epayment/v1/payments")
            .await
            .json(&serde_json::to_value(create_body("order-6003", 1)).unwrap()),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "Idempotency-Key"), "{answer}");
    assert_eq!(sandbox.state().epayment.lock().unwrap().payment_count(), before);
    assert_eq!(vipps.epayment().get_payment().reference("order-none").send().await.unwrap_err().status(), Some(404));
}
