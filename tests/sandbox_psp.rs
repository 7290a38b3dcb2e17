//! The PSP API v3 through the facade (`vipps.psp()`) against the sandbox: the payment's life
//! from initiation to refund, every operation, requests that break the spec (a 400 naming
//! the field, nothing changed), and the test-only force approve outside test mode.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::{json, Value};
use vipps::Vipps;
use vipps_psp::types::{
    ForceApproveRequest, InitiatePaymentRequest, PaymentDetailsRepresentation, PaymentStatus,
    PaymentTransactionDetailsOperation as Op, TransactionInfo, TransactionInfoOperationStatus, TransactionInfoStatus,
};
use support::raw_field;
use vipps_sandbox::Sandbox;

const PSP_ID: &str = "C948DFD1546347568874C4DDC93A2E3C";
const PHONE: &str = "92929292";

/// A sandbox and a facade client that sends `Psp-Id`.
async fn start() -> (Sandbox, Vipps) {
    let sandbox = Sandbox::start().await.expect("the sandbox starts");
    let vipps = support::builder(&sandbox).psp_id(PSP_ID).build().expect("a valid client");
    (sandbox, vipps)
}

fn initiate_json(id: &str, order: &str, amount: i64) -> Value {
    json!({
        "pspTransactionId": id,
        "merchantOrderId": order,
        "customerMobileNumber": PHONE,
        "amount": amount,
        "currency": "NOK",
        "pspRedirectUrl": "https://psp.example.com/redirect",
        "makePaymentUrl": "https://psp.example.com/makepayment",
        "makePaymentToken": "lfkhwef3op48yufpcno3fh34qp8fyncpf83hy4",
        "paymentText": "One pair of Vipps socks",
        "isApp": false,
        "skipLandingPage": false
    })
}

fn initiate_body(id: &str, order: &str, amount: i64) -> InitiatePaymentRequest {
    serde_json::from_value(initiate_json(id, order, amount)).expect("a valid body")
}

fn update(id: &str, status: TransactionInfoStatus, amount: u32) -> TransactionInfo {
    TransactionInfo {
        psp_transaction_id: id.into(),
        status,
        amount,
        currency: "NOK".into(),
        payment_text: None,
        operation_status: TransactionInfoOperationStatus::Success,
    }
}

/// The token in the `vippsRedirectUrl` query.
fn token_of(redirect_url: &str) -> String {
    redirect_url.split("token=").nth(1).expect("a token in the redirect URL").split('&').next().unwrap().to_owned()
}

/// Initiates a payment and returns the token force approve needs.
async fn initiate(vipps: &Vipps, id: &str, order: &str, amount: i64) -> String {
    let created = vipps
        .psp()
        .initiate_payment()
        .body(initiate_body(id, order, amount))
        .send()
        .await
        .expect("initiated");
    token_of(created.into_inner().vipps_redirect_url.as_deref().expect("a redirect URL"))
}

async fn approve(vipps: &Vipps, id: &str, token: &str) -> Result<(), vipps_core::Error> {
    vipps
        .psp()
        .force_approve_payment()
        .psp_transaction_id(id)
        .body(ForceApproveRequest::builder().customer_phone_number(PHONE).token(token))
        .send()
        .await
        .map(|_| ())

}

async fn details(vipps: &Vipps, id: &str) -> Result<PaymentDetailsRepresentation, vipps_core::Error> {
    vipps
        .psp()
        .get_payment_details()
        .psp_transaction_id(id)
        .send()
        .await
        .map(|r| r.into_inner())

}

async fn update_status(vipps: &Vipps, transactions: Vec<TransactionInfo>) -> Result<(), vipps_core::Error> {
    let answer = vipps
        .psp()
        .update_status()
        .body(PaymentStatus { transactions })
        .send()
        .await?
        .into_inner();
    let info = answer.response_info.expect("responseInfo");
    assert_eq!(info.response_code.as_deref(), Some("9000"));
    assert_eq!(info.response_message.as_deref(), Some("SUCCESS"));
    Ok(())
}

/// (captured, remaining to capture, refunded, remaining to refund).
fn totals(d: &PaymentDetailsRepresentation) -> (u32, u32, u32, u32) {
    let s = d.transaction_summary.as_ref().expect("a transaction summary");
    (
        s.captured_amount.unwrap(),
        s.remaining_amount_to_capture.unwrap(),
        s.refunded_amount.unwrap(),
        s.remaining_amount_to_refund.unwrap(),
    )
}

fn history(d: &PaymentDetailsRepresentation) -> Vec<(Op, u32, bool)> {
    d.transaction_log_history
        .iter()
        .map(|e| (e.operation.clone().unwrap(), e.amount.unwrap(), e.operation_success.unwrap()))
        .collect()
}

/// The 400's status and the field its problem names.
fn field_of(err: &vipps_core::Error) -> (Option<u16>, String) {
    let name = err
        .problem()
        .and_then(|p| p.extra_details.as_ref())
        .and_then(|d| d[0]["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    (err.status(), name)
}

/// Sends a raw request (for bodies the generated types would refuse client-side) and
/// returns the status and the JSON answer.
async fn raw(sandbox: &Sandbox, method: &str, path: &str, psp_id: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = support::raw_request(sandbox, method, path).await;
    if let Some(psp) = psp_id {
        request = request.header("Psp-Id", psp);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    support::raw_send(request).await
}

fn payment_count(sandbox: &Sandbox) -> usize {
    vipps_sandbox::state::lock(&sandbox.state().psp).payment_count()
}

#[tokio::test]
async fn a_payment_goes_from_initiation_through_reservation_and_captures_to_a_refund() {
    let (sandbox, vipps) = start().await;
    let created = vipps
        .psp()
        .initiate_payment()
        .body(initiate_body("7686f7788898767977", "acme-shop-123-order123abc", 49900))
        .send()
        .await
        .expect("initiated")
        .into_inner();
    assert_eq!(created.psp_transaction_id.as_deref(), Some("7686f7788898767977"));
    assert_eq!(created.merchant_order_id.as_deref(), Some("acme-shop-123-order123abc"));
    let redirect = created.vipps_redirect_url.expect("a redirect URL");
    assert!(redirect.starts_with(sandbox.base_url()), "{redirect}");
    let token = token_of(&redirect);

    // Initiated: the customer has not accepted, so nothing can be captured yet.
    let d = details(&vipps, "7686f7788898767977").await.unwrap();
    assert_eq!(d.merchant_order_id.as_deref(), Some("acme-shop-123-order123abc"));
    assert_eq!(totals(&d), (0, 0, 0, 0));
    assert!(d.transaction_log_history.is_empty());

    // The test user accepts: the whole amount is open to the PSP.
    approve(&vipps, "7686f7788898767977", &token).await.expect("approved");
    assert_eq!(totals(&details(&vipps, "7686f7788898767977").await.unwrap()), (0, 49900, 0, 0));

    // The PSP reports a reservation and a partial capture in one batch.
    update_status(
        &vipps,
        vec![
            update("7686f7788898767977", TransactionInfoStatus::Reserved, 49900),
            update("7686f7788898767977", TransactionInfoStatus::Captured, 20000),
        ],
    )
    .await
    .expect("reserved and captured");
    assert_eq!(totals(&details(&vipps, "7686f7788898767977").await.unwrap()), (20000, 29900, 0, 20000));

    sandbox.advance_clock(Duration::from_secs(86_400)).unwrap();
    // A day on, the token has expired. A read replaces it (a GET may be sent again after a
    // 401); the status update, a POST without an idempotency key, would not be.
    details(&vipps, "7686f7788898767977").await.unwrap();
    update_status(
        &vipps,
        vec![
            update("7686f7788898767977", TransactionInfoStatus::Captured, 29900),
            update("7686f7788898767977", TransactionInfoStatus::Refunded, 10000),
        ],
    )
    .await
    .expect("captured and refunded");

    let d = details(&vipps, "7686f7788898767977").await.unwrap();
    assert_eq!(totals(&d), (49900, 0, 10000, 39900));
    assert_eq!(
        history(&d),
        vec![
            (Op::Reserved, 49900, true),
            (Op::Captured, 20000, true),
            (Op::Captured, 29900, true),
            (Op::Refunded, 10000, true)
        ]
    );
    assert_eq!(d.transaction_log_history[0].payment_text.as_deref(), Some("One pair of Vipps socks"));
    let stamps: Vec<chrono::DateTime<chrono::FixedOffset>> = d
        .transaction_log_history
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e.time_stamp.as_deref().unwrap()).expect("an ISO 8601 time"))
        .collect();
    assert!(stamps[2] - stamps[1] >= chrono::Duration::days(1), "{stamps:?}");
}

#[tokio::test]
async fn direct_capture_cancel_of_the_rest_and_cancel_before_approval() {
    let (_sandbox, vipps) = start().await;
    // Accepted, captured in part without a reservation, the rest cancelled.
    let token = initiate(&vipps, "directcapture1", "order-direct-1", 10000).await;
    approve(&vipps, "directcapture1", &token).await.unwrap();
    update_status(&vipps, vec![update("directcapture1", TransactionInfoStatus::Captured, 6000)]).await.unwrap();
    update_status(&vipps, vec![update("directcapture1", TransactionInfoStatus::Cancelled, 4000)]).await.unwrap();
    let d = details(&vipps, "directcapture1").await.unwrap();
    assert_eq!(totals(&d), (6000, 0, 0, 6000));
    assert_eq!(history(&d), vec![(Op::Captured, 6000, true), (Op::Cancelled, 4000, true)]);
    // Nothing is left to capture or cancel; refunds are still possible.
    let err =
        update_status(&vipps, vec![update("directcapture1", TransactionInfoStatus::Captured, 1)]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].status".into()));
    update_status(&vipps, vec![update("directcapture1", TransactionInfoStatus::Refunded, 6000)]).await.unwrap();
    assert_eq!(totals(&details(&vipps, "directcapture1").await.unwrap()), (6000, 0, 6000, 0));

    // Cancelled before the customer did anything: approving it afterwards fails.
    let token = initiate(&vipps, "cancelledearly", "order-cancel-1", 5000).await;
    update_status(&vipps, vec![update("cancelledearly", TransactionInfoStatus::Cancelled, 5000)]).await.unwrap();
    let err = approve(&vipps, "cancelledearly", &token).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(history(&details(&vipps, "cancelledearly").await.unwrap()), vec![(Op::Cancelled, 5000, true)]);
}

#[tokio::test]
async fn a_failed_operation_is_recorded_without_changing_the_totals() {
    let (_sandbox, vipps) = start().await;
    let token = initiate(&vipps, "failedreserve1", "order-failed-1", 3000).await;
    approve(&vipps, "failedreserve1", &token).await.unwrap();
    let mut failed = update("failedreserve1", TransactionInfoStatus::Reserved, 3000);
    failed.operation_status = TransactionInfoOperationStatus::Failed;
    failed.payment_text = Some("Refused by issuer".into());
    update_status(&vipps, vec![failed]).await.unwrap();
    let d = details(&vipps, "failedreserve1").await.unwrap();
    assert_eq!(history(&d), vec![(Op::Reserved, 3000, false)]);
    assert_eq!(d.transaction_log_history[0].payment_text.as_deref(), Some("Refused by issuer"));
    assert_eq!(totals(&d), (0, 3000, 0, 0));
}

#[tokio::test]
async fn a_batch_with_one_bad_update_changes_nothing() {
    let (_sandbox, vipps) = start().await;
    let token = initiate(&vipps, "batch1", "order-batch-1", 10000).await;
    approve(&vipps, "batch1", &token).await.unwrap();
    initiate(&vipps, "batch2", "order-batch-2", 10000).await;

    // The first update is fine; the second refunds more than was captured.
    let err = update_status(
        &vipps,
        vec![
            update("batch1", TransactionInfoStatus::Captured, 5000),
            update("batch1", TransactionInfoStatus::Refunded, 6000),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[1].amount".into()));

    // Reserving a payment the customer has not accepted.
    let err = update_status(&vipps, vec![update("batch2", TransactionInfoStatus::Reserved, 10000)]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].status".into()));

    // Capturing more than is open, and an unknown transaction.
    let err = update_status(&vipps, vec![update("batch1", TransactionInfoStatus::Captured, 10001)]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].amount".into()));
    let err =
        update_status(&vipps, vec![update("nosuchpayment", TransactionInfoStatus::Captured, 1)]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].pspTransactionId".into()));

    // Only NOK.
    let mut sek = update("batch1", TransactionInfoStatus::Captured, 100);
    sek.currency = "SEK".into();
    let err = update_status(&vipps, vec![sek]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].currency".into()));

    for id in ["batch1", "batch2"] {
        let d = details(&vipps, id).await.unwrap();
        assert!(d.transaction_log_history.is_empty(), "{id}: {d:?}");
        assert_eq!(totals(&d).0, 0);
    }
    assert_eq!(totals(&details(&vipps, "batch1").await.unwrap()), (0, 10000, 0, 0));
}

#[tokio::test]
async fn update_status_bodies_that_break_the_spec_are_400s_naming_the_field() {
    let (sandbox, vipps) = start().await;
    let token = initiate(&vipps, "rawupdate1", "order-raw-1", 10000).await;
    approve(&vipps, "rawupdate1", &token).await.unwrap();
    let path = "/psp/v3/psppayments/updatestatus";

    let missing_status = json!({"transactions": [{"pspTransactionId": "rawupdate1", "amount": 100}]});
    let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(missing_status)).await;
    assert_eq!((status, raw_field(&answer)), (400, "transactions[0].status"), "{answer}");

    let unknown_status =
        json!({"transactions": [{"pspTransactionId": "rawupdate1", "amount": 100, "status": "AUTHORISED"}]});
    let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(unknown_status)).await;
    assert_eq!((status, raw_field(&answer)), (400, "transactions[0].status"), "{answer}");

    let big =
        json!({"transactions": [{"pspTransactionId": "rawupdate1", "amount": 3_000_000_000u64, "status": "CAPTURED"}]});
    let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(big)).await;
    assert_eq!((status, raw_field(&answer)), (400, "transactions[0].amount"), "{answer}");

    // The SDK's amount is unsigned; a client that sends a negative one anyway is refused.
    let negative = json!({"transactions": [{"pspTransactionId": "rawupdate1", "amount": -5, "status": "CAPTURED"}]});
    let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(negative)).await;
    assert_eq!((status, raw_field(&answer)), (400, "transactions[0].amount"), "{answer}");

    assert_eq!(totals(&details(&vipps, "rawupdate1").await.unwrap()), (0, 10000, 0, 0));
}

#[tokio::test]
async fn initiate_bodies_that_break_the_spec_are_400s_naming_the_field_and_create_nothing() {
    let (sandbox, vipps) = start().await;
    let path = "/psp/v3/psppayments/init";
    let with = |key: &str, value: Value| {
        let mut body = initiate_json("abc123", "order-1", 1000);
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = initiate_json("abc123", "order-1", 1000);
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (without("merchantOrderId"), "merchantOrderId"),
        (without("makePaymentUrl"), "makePaymentUrl"),
        (with("pspTransactionId", json!("a".repeat(37))), "pspTransactionId"),
        (with("pspTransactionId", json!("ABC-!")), "pspTransactionId"),
        (with("pspTransactionId", json!("abc 123")), "pspTransactionId"),
        (with("merchantOrderId", json!("order 123")), "merchantOrderId"),
        (with("customerMobileNumber", json!("1234")), "customerMobileNumber"),
        (with("amount", json!("1000")), "amount"),
        (with("amount", json!(0)), "amount"),
        (with("amount", json!(-100)), "amount"),
        (with("amount", json!(2_147_483_648u64)), "amount"),
        (with("currency", json!("EUR")), "currency"),
        (with("makePaymentToken", json!("t".repeat(256))), "makePaymentToken"),
        (with("paymentText", json!("x".repeat(101))), "paymentText"),
        (with("pspRedirectUrl", json!("not a url")), "pspRedirectUrl"),
        (with("makePaymentUrl", json!("/relative/path")), "makePaymentUrl"),
    ];
    for (body, field) in cases {
        let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(body.clone())).await;
        assert_eq!((status, raw_field(&answer)), (400, field), "{body} -> {answer}");
    }

    // skipLandingPage needs the customer's number.
    let mut body = initiate_body("abc123", "order-1", 1000);
    body.skip_landing_page = true;
    body.customer_mobile_number = None;
    let err = vipps
        .psp()
        .initiate_payment()
        .body(body)
        .send()
        .await

        .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "customerMobileNumber".into()));

    // Through the facade too: an amount the generated type allows but the API does not.
    let err = vipps
        .psp()
        .initiate_payment()
        .body(initiate_body("abc123", "order-1", 0))
        .send()
        .await

        .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "amount".into()));

    assert_eq!(payment_count(&sandbox), 0);
    assert_eq!(details(&vipps, "abc123").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn a_psp_transaction_id_or_merchant_order_id_can_be_used_once() {
    let (sandbox, vipps) = start().await;
    initiate(&vipps, "dup1", "order-dup-1", 1000).await;
    let psp = vipps.psp();
    let send = |body: InitiatePaymentRequest| psp.initiate_payment().body(body).send();

    let err = send(initiate_body("dup1", "order-dup-2", 2000)).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "pspTransactionId".into()));
    let err = send(initiate_body("dup2", "order-dup-1", 2000)).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "merchantOrderId".into()));

    assert_eq!(payment_count(&sandbox), 1);
    let d = details(&vipps, "dup1").await.unwrap();
    assert_eq!(d.merchant_order_id.as_deref(), Some("order-dup-1"));
}

#[tokio::test]
async fn psp_id_and_merchant_serial_number_are_required_and_scope_the_payment() {
    let (sandbox, vipps) = start().await;
    initiate(&vipps, "scoped1", "order-scoped-1", 1000).await;

    // A client without `.psp_id(...)` sends no Psp-Id header.
    let no_psp = support::client(&sandbox);
    let err = no_psp
        .psp()
        .initiate_payment()
        .body(initiate_body("scoped2", "order-scoped-2", 1000))
        .send()
        .await

        .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "Psp-Id".into()));
    let err = details(&no_psp, "scoped1").await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "Psp-Id".into()));

    // Another PSP, or another merchant of the same PSP, does not see the payment.
    let other_psp = support::builder(&sandbox).psp_id("another-psp").build().unwrap();
    assert_eq!(details(&other_psp, "scoped1").await.unwrap_err().status(), Some(404));
    let other_merchant = vipps.merchant("654321").unwrap().psp();
    let err = other_merchant
        .get_payment_details()
        .psp_transaction_id("scoped1")
        .send()
        .await

        .unwrap_err();
    assert_eq!(err.status(), Some(404));

    // Without Merchant-Serial-Number.
    let (status, answer) = raw(&sandbox, "GET", "/psp/v3/psppayments/scoped1/details", Some(PSP_ID), None).await;
    assert_eq!(status, 200, "{answer}");
    let http = vipps_core::reqwest::Client::new();
    let c = sandbox.credentials();
    let token = support::raw_token(&sandbox).await;
    let answer = http
        .get(format!("{}/psp/v3/psppayments/scoped1/details", sandbox.base_url()))
        .bearer_auth(&token)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .header("Psp-Id", PSP_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(raw_field(&answer), "Merchant-Serial-Number");

    assert_eq!(payment_count(&sandbox), 1);
}

#[tokio::test]
async fn force_approve_checks_the_token_the_phone_number_and_the_state() {
    let (sandbox, vipps) = start().await;
    let token = initiate(&vipps, "approve1", "order-approve-1", 1000).await;
    let approve_with = |phone: &'static str, token: String| {
        let vipps = vipps.clone();
        async move {
            vipps
                .psp()
                .force_approve_payment()
                .psp_transaction_id("approve1")
                .body(ForceApproveRequest::builder().customer_phone_number(phone).token(token))
                .send()
                .await

        }
    };

    let err = approve_with(PHONE, "not-the-token".into()).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "token".into()));
    let err = approve_with("12345678", token.clone()).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "customerPhoneNumber".into()));
    let path = "/psp/v3/integration-test/psppayments/approve1/approve";
    let (status, answer) =
        raw(&sandbox, "POST", path, Some(PSP_ID), Some(json!({"customerPhoneNumber": "1234", "token": token}))).await;
    assert_eq!((status, raw_field(&answer)), (400, "customerPhoneNumber"), "{answer}");
    let (status, answer) = raw(&sandbox, "POST", path, Some(PSP_ID), Some(json!({"customerPhoneNumber": PHONE}))).await;
    assert_eq!((status, raw_field(&answer)), (400, "token"), "{answer}");
    // Still waiting for the customer.
    assert_eq!(totals(&details(&vipps, "approve1").await.unwrap()), (0, 0, 0, 0));

    approve_with(PHONE, token.clone()).await.expect("approved");
    assert_eq!(approve_with(PHONE, token.clone()).await.unwrap_err().status(), Some(400));
    assert_eq!(approve(&vipps, "nosuchpayment", &token).await.unwrap_err().status(), Some(404));
    assert_eq!(totals(&details(&vipps, "approve1").await.unwrap()), (0, 1000, 0, 0));
}

#[tokio::test]
async fn force_approve_is_not_found_outside_test_mode() {
    let sandbox = Sandbox::builder().test_mode(false).start().await.expect("the sandbox starts");
    let vipps = support::builder(&sandbox).psp_id(PSP_ID).build().unwrap();
    let token = initiate(&vipps, "prod1", "order-prod-1", 1000).await;
    let err = approve(&vipps, "prod1", &token).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    // The rest of the API works, and the payment still waits for the customer.
    assert_eq!(totals(&details(&vipps, "prod1").await.unwrap()), (0, 0, 0, 0));
    let err = update_status(&vipps, vec![update("prod1", TransactionInfoStatus::Reserved, 1000)]).await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "transactions[0].status".into()));
}
