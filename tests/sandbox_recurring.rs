//! The Recurring API v3 through the facade (`vipps.recurring()`) against the sandbox: the
//! quickstart flow, every v3 operation, the agreement and charge state machines (force-accept,
//! expiry, stop, due dates, failures, capture, refund, cancel), list filters and
//! `Continuation-Token` paging, requests that break the spec (a 400 naming the field, nothing
//! changed), force-accept outside test mode, and `Idempotency-Key` replay.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};
use vipps::Vipps;
use vipps_recurring::types::{
    AgreementResponseV3, AgreementStatus, CaptureRequestV3, ChargeEventEvent, ChargeResponseV3, ChargeStatus,
    ChargeTypeV3, CreateChargeAsyncV3, CreateChargeV3, DraftAgreementV3, ForceAcceptAgreementV3, PatchAgreementV3,
    PricingResponse, RefundRequest,
};
use vipps_sandbox::recurring::FAILING_PHONE_NUMBER;
use support::raw_field;
use vipps_sandbox::Sandbox;

const PHONE: &str = "4791234567";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn draft_json() -> Value {
    json!({
        "pricing": {"type": "LEGACY", "amount": 29900, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/agreement",
        "phoneNumber": PHONE,
        "productName": "MyNews Digital"
    })
}

fn draft_body(value: Value) -> DraftAgreementV3 {
    serde_json::from_value(value).expect("a valid draft body")
}

fn charge_body(value: Value) -> CreateChargeV3 {
    serde_json::from_value(value).expect("a valid charge body")
}

fn patch_body(value: Value) -> PatchAgreementV3 {
    serde_json::from_value(value).expect("a valid patch body")
}

fn today(sandbox: &Sandbox) -> NaiveDate {
    sandbox.state().today()
}

/// `days` after the sandbox's date, as `YYYY-MM-DD`.
fn due_in(sandbox: &Sandbox, days: i64) -> String {
    (today(sandbox) + chrono::Duration::days(days)).format("%Y-%m-%d").to_string()
}

fn charge_count(sandbox: &Sandbox) -> usize {
    vipps_sandbox::state::lock(&sandbox.state().recurring).charge_count()
}

fn agreement_count(sandbox: &Sandbox) -> usize {
    vipps_sandbox::state::lock(&sandbox.state().recurring).agreement_count()
}

/// The status and the first field named in the problem of a failed call.
fn failure<T: std::fmt::Debug, E>(result: Result<T, E>) -> (Option<u16>, String)
where
    vipps_core::Error: From<E>,
{
    let err = vipps_core::Error::from(result.expect_err("the call should fail"));
    let field = err
        .problem()
        .and_then(|p| p.extra_details.as_ref())
        .and_then(|d| d[0]["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    (err.status(), field)
}

async fn draft(vipps: &Vipps, value: Value) -> (String, Option<String>) {
    let answer = vipps.recurring().draft_agreement().body(draft_body(value)).send().await.expect("drafted");
    assert_eq!(answer.status(), 201);
    let answer = answer.into_inner();
    (answer.agreement_id, answer.charge_id.map(|c| c.to_string()))
}

async fn accept(vipps: &Vipps, agreement_id: &str, phone: &str) {
    vipps
        .recurring()
        .force_accept_agreement()
        .agreement_id(agreement_id)
        .body(ForceAcceptAgreementV3 { phone_number: phone.into() })
        .send()
        .await
        .expect("force-accepted");
}

/// An ACTIVE agreement accepted by `phone`.
async fn active_agreement(vipps: &Vipps, phone: &str) -> String {
    let (id, _) = draft(vipps, draft_json()).await;
    accept(vipps, &id, phone).await;
    id
}

async fn fetch_agreement(vipps: &Vipps, id: &str) -> AgreementResponseV3 {
    vipps.recurring().fetch_agreement().agreement_id(id).send().await.expect("fetched").into_inner()
}

async fn create_charge(vipps: &Vipps, agreement_id: &str, value: Value) -> String {
    let answer = vipps
        .recurring()
        .create_charge()
        .agreement_id(agreement_id)
        .body(charge_body(value))
        .send()
        .await
        .expect("charge created");
    assert_eq!(answer.status(), 201);
    answer.into_inner().charge_id.expect("a charge id")
}

/// An UNSCHEDULED charge: due today, so processed as it is created.
async fn unscheduled(vipps: &Vipps, agreement_id: &str, amount: u32, transaction_type: &str) -> String {
    create_charge(
        vipps,
        agreement_id,
        json!({"amount": amount, "transactionType": transaction_type, "description": "Extra", "type": "UNSCHEDULED"}),
    )
    .await
}

async fn fetch_charge(vipps: &Vipps, agreement_id: &str, charge_id: &str) -> ChargeResponseV3 {
    vipps
        .recurring()
        .fetch_charge()
        .agreement_id(agreement_id)
        .charge_id(charge_id)
        .send()
        .await
        .expect("charge fetched")
        .into_inner()
}

async fn capture(vipps: &Vipps, agreement_id: &str, charge_id: &str, amount: u32) -> Result<(), vipps_core::Error> {
    vipps
        .recurring()
        .capture_charge()
        .agreement_id(agreement_id)
        .charge_id(charge_id)
        .body(CaptureRequestV3 { amount, description: None })
        .send()
        .await
        .map(|_| ())

}

async fn refund(vipps: &Vipps, agreement_id: &str, charge_id: &str, amount: u32) -> Result<(), vipps_core::Error> {
    vipps
        .recurring()
        .refund_charge()
        .agreement_id(agreement_id)
        .charge_id(charge_id)
        .body(RefundRequest::builder().amount(amount).description("Refund"))
        .send()
        .await
        .map(|_| ())

}

async fn cancel(vipps: &Vipps, agreement_id: &str, charge_id: &str) -> Result<(), vipps_core::Error> {
    vipps
        .recurring()
        .cancel_charge()
        .agreement_id(agreement_id)
        .charge_id(charge_id)
        .send()
        .await
        .map(|_| ())

}

async fn all_charges(vipps: &Vipps, agreement_id: &str, status: Option<ChargeStatus>) -> Vec<ChargeResponseV3> {
    let client = vipps.recurring();
    vipps::recurring::collect(vipps::recurring::charges(&client, agreement_id, status)).await.expect("listed")
}

async fn agreements_with(vipps: &Vipps, status: AgreementStatus) -> Vec<String> {
    let client = vipps.recurring();
    vipps::recurring::collect(vipps::recurring::agreements(&client, status, 2))
        .await
        .expect("listed")
        .into_iter()
        .map(|a| a.id.to_string())
        .collect()
}

/// Sends a raw request (for bodies the generated types would refuse client-side) and returns
/// the status and the JSON answer.
async fn raw(sandbox: &Sandbox, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = support::raw_request(sandbox, method, path).await.header("Idempotency-Key", uuid_like());
    if let Some(body) = body {
        request = request.json(&body);
    }
    support::raw_send(request).await
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("raw-{}", N.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------
// The quickstart flow and every operation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn quickstart_flow_draft_accept_reserve_capture_refund_list() {
    let (sandbox, vipps) = support::start().await;

    // Draft: PENDING, with a confirmation URL: the sandbox's own landing page.
    let (agreement_id, initial) = draft(&vipps, draft_json()).await;
    assert!(initial.is_none());
    let pending = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(pending.status, Some(AgreementStatus::Pending));
    let landing = format!("{}/recurring/v3/landing/{agreement_id}?token=", sandbox.base_url());
    let confirmation = pending.vipps_confirmation_url.clone().unwrap_or_default();
    assert!(confirmation.starts_with(&landing), "{confirmation}");
    assert!(matches!(pending.pricing, PricingResponse::LegacyPricingResponse(ref p) if p.amount == 29900));

    // Force-accept: ACTIVE.
    accept(&vipps, &agreement_id, PHONE).await;
    let active = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(active.status, Some(AgreementStatus::Active));
    assert!(active.start.is_some());

    // A RESERVE_CAPTURE charge of type UNSCHEDULED is due today: RESERVED at once.
    let charge_id = unscheduled(&vipps, &agreement_id, 29900, "RESERVE_CAPTURE").await;
    let reserved = fetch_charge(&vipps, &agreement_id, &charge_id).await;
    assert_eq!(reserved.status, ChargeStatus::Reserved);
    assert_eq!(reserved.type_, ChargeTypeV3::Unscheduled);

    // Capture all, refund part.
    capture(&vipps, &agreement_id, &charge_id, 29900).await.expect("captured");
    assert_eq!(fetch_charge(&vipps, &agreement_id, &charge_id).await.status, ChargeStatus::Charged);
    refund(&vipps, &agreement_id, &charge_id, 10000).await.expect("refunded");

    // List charges.
    let charges = all_charges(&vipps, &agreement_id, None).await;
    assert_eq!(charges.len(), 1);
    let charge = &charges[0];
    assert_eq!(charge.id.as_str(), charge_id);
    assert_eq!(charge.status, ChargeStatus::PartiallyRefunded);
    assert_eq!((charge.summary.captured, charge.summary.refunded, charge.summary.cancelled), (29900, 10000, 0));
    let events: Vec<_> = charge.history.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        events,
        [ChargeEventEvent::Create, ChargeEventEvent::Reserve, ChargeEventEvent::Capture, ChargeEventEvent::Refund]
    );
    drop(sandbox);
}

#[tokio::test]
async fn the_quickstart_flow_also_works_with_a_recurring_charge_and_the_clock() {
    let (sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, PHONE).await;
    let due = due_in(&sandbox, 1);
    let charge_id = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 29900, "transactionType": "RESERVE_CAPTURE", "description": "May", "due": due, "retryDays": 3}),
    )
    .await;
    // Due tomorrow: DUE now, RESERVED once the sandbox date reaches the due date.
    assert_eq!(fetch_charge(&vipps, &agreement_id, &charge_id).await.status, ChargeStatus::Due);
    sandbox.advance_clock(DAY).unwrap();
    let charge = fetch_charge(&vipps, &agreement_id, &charge_id).await;
    assert_eq!(charge.status, ChargeStatus::Reserved);
    assert_eq!(charge.due.date_naive().format("%Y-%m-%d").to_string(), due);
    capture(&vipps, &agreement_id, &charge_id, 29900).await.expect("captured");
    refund(&vipps, &agreement_id, &charge_id, 5000).await.expect("refunded");
    assert_eq!(fetch_charge(&vipps, &agreement_id, &charge_id).await.status, ChargeStatus::PartiallyRefunded);
}

#[tokio::test]
async fn every_v3_operation_succeeds_through_the_facade() {
    let (sandbox, vipps) = support::start().await;
    let r = vipps.recurring();

    // DraftAgreementV3, with an initial charge.
    let mut body = draft_json();
    body["initialCharge"] =
        json!({"amount": 4900, "description": "First month", "transactionType": "DIRECT_CAPTURE", "orderId": "init-1"});
    let (agreement_id, initial) = draft(&vipps, body).await;
    assert_eq!(initial.as_deref(), Some("init-1"));

    // FetchAgreementV3.
    assert_eq!(fetch_agreement(&vipps, &agreement_id).await.status, Some(AgreementStatus::Pending));

    // acceptUsingPATCHV3.
    let accepted = r
        .force_accept_agreement()
        .agreement_id(&agreement_id)
        .body(ForceAcceptAgreementV3 { phone_number: PHONE.into() })
        .send()
        .await
        .expect("accepted");
    assert_eq!(accepted.status(), 204);

    // UpdateAgreementPatchV3.
    let updated = r
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"productName": "MyNews Plus", "pricing": {"amount": 39900}})))
        .send()
        .await
        .expect("updated");
    assert_eq!(updated.status(), 204);
    let agreement = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(agreement.product_name.as_str(), "MyNews Plus");

    // ListAgreementsV3 (ACTIVE by default).
    let listed = r.list_agreements().send().await.expect("listed").into_inner();
    assert_eq!(listed.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), [agreement_id.as_str()]);

    // CreateChargeV3.
    let due = due_in(&sandbox, 5);
    let charge_id = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 39900, "transactionType": "DIRECT_CAPTURE", "description": "June", "due": due, "retryDays": 2, "orderId": "june-1"}),
    )
    .await;
    assert_eq!(charge_id, "june-1");

    // CreateChargeAsyncV3.
    let batch: Vec<CreateChargeAsyncV3> = serde_json::from_value(json!([
        {"agreementId": agreement_id, "amount": 39900, "transactionType": "RESERVE_CAPTURE", "description": "July", "due": due_in(&sandbox, 1), "retryDays": 0, "orderId": "july-1"}
    ]))
    .unwrap();
    let answer = r.create_charges().body(batch).send().await.expect("batch accepted");
    assert_eq!(answer.status(), 202);
    let answer = answer.into_inner();
    assert_eq!(answer.valid_charges, ["july-1"]);
    assert!(answer.invalid_charges.is_empty());

    // FetchChargeV3 and FetchChargeByIdV3.
    let fetched = fetch_charge(&vipps, &agreement_id, "june-1").await;
    assert_eq!((&fetched.status, fetched.amount), (&ChargeStatus::Pending, 39900));
    let by_id = r.fetch_charge_by_id().charge_id("june-1").send().await.expect("fetched by id").into_inner();
    assert_eq!(by_id.agreement_id, agreement_id);
    assert_eq!(by_id, fetched);

    // ListChargesV3: the initial charge and both new ones.
    let page = r.list_charges().agreement_id(&agreement_id).send().await.expect("listed");
    assert!(page.headers().get("continuation-token").is_none());
    let ids: Vec<_> = page.into_inner().into_iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, ["init-1", "june-1", "july-1"]);

    // CancelChargeV3.
    let cancelled =
        r.cancel_charge().agreement_id(&agreement_id).charge_id("june-1").send().await.expect("cancelled");
    assert_eq!(cancelled.status(), 204);
    assert_eq!(fetch_charge(&vipps, &agreement_id, "june-1").await.status, ChargeStatus::Cancelled);

    // CaptureChargeV3, once the July charge is reserved on its due date.
    sandbox.advance_clock(DAY).unwrap();
    assert_eq!(fetch_charge(&vipps, &agreement_id, "july-1").await.status, ChargeStatus::Reserved);
    let captured = r
        .capture_charge()
        .agreement_id(&agreement_id)
        .charge_id("july-1")
        .body(CaptureRequestV3 { amount: 39900, description: None })
        .send()
        .await
        .expect("captured");
    assert_eq!(captured.status(), 204);

    // RefundChargeV3 of the initial charge, charged at accept.
    let refunded = r
        .refund_charge()
        .agreement_id(&agreement_id)
        .charge_id("init-1")
        .body(RefundRequest::builder().amount(4900).description("Goodwill"))
        .send()
        .await
        .expect("refunded");
    assert_eq!(refunded.status(), 204);
    assert_eq!(fetch_charge(&vipps, &agreement_id, "init-1").await.status, ChargeStatus::Refunded);
}

// ---------------------------------------------------------------------------------------
// Agreements
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_initial_charge_is_reserved_or_charged_when_the_agreement_is_accepted() {
    let (_sandbox, vipps) = support::start().await;
    for (transaction_type, status, captured) in
        [("RESERVE_CAPTURE", ChargeStatus::Reserved, 0), ("DIRECT_CAPTURE", ChargeStatus::Charged, 4900)]
    {
        let mut body = draft_json();
        body["initialCharge"] = json!({"amount": 4900, "description": "Start", "transactionType": transaction_type});
        let (agreement_id, charge_id) = draft(&vipps, body).await;
        let charge_id = charge_id.expect("a generated id for the initial charge");
        let before = fetch_charge(&vipps, &agreement_id, &charge_id).await;
        assert_eq!((before.status, before.type_), (ChargeStatus::Pending, ChargeTypeV3::Initial));
        accept(&vipps, &agreement_id, PHONE).await;
        let after = fetch_charge(&vipps, &agreement_id, &charge_id).await;
        assert_eq!(after.status, status, "{transaction_type}");
        assert_eq!(after.summary.captured, captured);
    }
}

#[tokio::test]
async fn a_pending_agreement_expires_by_the_sandbox_clock_and_can_then_not_be_used() {
    let (sandbox, vipps) = support::start().await;
    let mut body = draft_json();
    body["initialCharge"] = json!({"amount": 4900, "description": "Start", "transactionType": "RESERVE_CAPTURE"});
    let (agreement_id, charge_id) = draft(&vipps, body).await;
    let charge_id = charge_id.unwrap();
    sandbox.advance_clock(Duration::from_secs(9 * 60)).unwrap();
    assert_eq!(fetch_agreement(&vipps, &agreement_id).await.status, Some(AgreementStatus::Pending));
    sandbox.advance_clock(Duration::from_secs(60)).unwrap();
    assert_eq!(fetch_agreement(&vipps, &agreement_id).await.status, Some(AgreementStatus::Expired));
    assert_eq!(fetch_charge(&vipps, &agreement_id, &charge_id).await.status, ChargeStatus::Cancelled);
    assert_eq!(agreements_with(&vipps, AgreementStatus::Expired).await, [agreement_id.as_str()]);
    assert!(agreements_with(&vipps, AgreementStatus::Pending).await.is_empty());

    // Neither accepted, changed nor charged any more.
    let accepted = vipps
        .recurring()
        .force_accept_agreement()
        .agreement_id(&agreement_id)
        .body(ForceAcceptAgreementV3 { phone_number: PHONE.into() })
        .send()
        .await;
    assert_eq!(failure(accepted).0, Some(409));
    let patched = vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"productName": "Too late"})))
        .send()
        .await;
    assert_eq!(failure(patched).0, Some(409));
    let charged = vipps
        .recurring()
        .create_charge()
        .agreement_id(&agreement_id)
        .body(charge_body(
            json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "type": "UNSCHEDULED"}),
        ))
        .send()
        .await;
    assert_eq!(failure(charged).0, Some(409));
    assert_eq!(charge_count(&sandbox), 1);
    assert_eq!(fetch_agreement(&vipps, &agreement_id).await.product_name.as_str(), "MyNews Digital");
}

#[tokio::test]
async fn stopping_an_agreement_releases_its_open_charges_and_is_final() {
    let (sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, PHONE).await;
    let reserved = unscheduled(&vipps, &agreement_id, 5000, "RESERVE_CAPTURE").await;
    let partly = unscheduled(&vipps, &agreement_id, 5000, "RESERVE_CAPTURE").await;
    capture(&vipps, &agreement_id, &partly, 2000).await.unwrap();
    let charged = unscheduled(&vipps, &agreement_id, 5000, "DIRECT_CAPTURE").await;
    let later = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 5000, "transactionType": "DIRECT_CAPTURE", "description": "Later", "due": due_in(&sandbox, 10), "retryDays": 1}),
    )
    .await;

    vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"status": "STOPPED"})))
        .send()
        .await
        .expect("stopped");
    let agreement = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(agreement.status, Some(AgreementStatus::Stopped));
    assert!(agreement.stop.is_some());

    assert_eq!(fetch_charge(&vipps, &agreement_id, &reserved).await.status, ChargeStatus::Cancelled);
    assert_eq!(fetch_charge(&vipps, &agreement_id, &later).await.status, ChargeStatus::Cancelled);
    let partly = fetch_charge(&vipps, &agreement_id, &partly).await;
    assert_eq!((partly.status, partly.summary.captured, partly.summary.cancelled), (ChargeStatus::Charged, 2000, 3000));
    assert_eq!(fetch_charge(&vipps, &agreement_id, &charged).await.status, ChargeStatus::Charged);
    // What was charged can still be refunded.
    refund(&vipps, &agreement_id, &charged, 5000).await.expect("refund after stop");

    // Final: no more changes, no more charges, and a PENDING agreement can be stopped too.
    let again = vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"productName": "Back again"})))
        .send()
        .await;
    assert_eq!(failure(again).0, Some(409));
    let count = charge_count(&sandbox);
    let charge = vipps
        .recurring()
        .create_charge()
        .agreement_id(&agreement_id)
        .body(charge_body(
            json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "type": "UNSCHEDULED"}),
        ))
        .send()
        .await;
    assert_eq!(failure(charge).0, Some(409));
    assert_eq!(charge_count(&sandbox), count);

    let (pending, _) = draft(&vipps, draft_json()).await;
    vipps
        .recurring()
        .update_agreement()
        .agreement_id(&pending)
        .body(patch_body(json!({"status": "STOPPED"})))
        .send()
        .await
        .expect("a pending agreement stops");
    assert_eq!(fetch_agreement(&vipps, &pending).await.status, Some(AgreementStatus::Stopped));
}

#[tokio::test]
async fn list_agreements_filters_by_status_and_pages() {
    let (sandbox, vipps) = support::start().await;
    let mut active = Vec::new();
    for _ in 0..5 {
        active.push(active_agreement(&vipps, PHONE).await);
    }
    let (pending, _) = draft(&vipps, draft_json()).await;
    let stopped = active_agreement(&vipps, PHONE).await;
    vipps
        .recurring()
        .update_agreement()
        .agreement_id(&stopped)
        .body(patch_body(json!({"status": "STOPPED"})))
        .send()
        .await
        .unwrap();

    // The facade's stream pages with pageNumber/pageSize (2 per page here).
    assert_eq!(agreements_with(&vipps, AgreementStatus::Active).await, active);
    assert_eq!(agreements_with(&vipps, AgreementStatus::Pending).await, [pending.as_str()]);
    assert_eq!(agreements_with(&vipps, AgreementStatus::Stopped).await, [stopped]);
    assert!(agreements_with(&vipps, AgreementStatus::Expired).await.is_empty());

    // One page by hand.
    let page = vipps
        .recurring()
        .list_agreements()
        .page_number(2)
        .page_size(2)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), active[2..4]);

    // createdAfter, in epoch milliseconds.
    let created = fetch_agreement(&vipps, &pending).await.created.timestamp_millis();
    let after =
        vipps.recurring().list_agreements().status(AgreementStatus::Pending).created_after(created).send().await;
    assert!(after.unwrap().into_inner().is_empty());
    let before =
        vipps.recurring().list_agreements().status(AgreementStatus::Pending).created_after(created - 1).send().await;
    assert_eq!(before.unwrap().into_inner().len(), 1);

    // A page size over 2000 or a status outside the enum is a 400 naming the parameter.
    let (status, answer) = raw(&sandbox, "GET", "/recurring/v3/agreements?pageSize=2001&pageNumber=1", None).await;
    assert_eq!((status, raw_field(&answer)), (400, "pageSize"));
    let (status, answer) = raw(&sandbox, "GET", "/recurring/v3/agreements?status=PAUSED", None).await;
    assert_eq!((status, raw_field(&answer)), (400, "status"));
}

#[tokio::test]
async fn updates_change_the_agreement_and_are_checked_against_its_pricing() {
    let (_sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, PHONE).await;
    vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({
            "productDescription": "Every article",
            "externalId": "sub-42",
            "merchantAgreementUrl": "https://example.com/my-subscription",
            "pricing": {"amount": 19900},
            "interval": {"type": "RECURRING", "period": {"unit": "WEEK", "count": 2}}
        })))
        .send()
        .await
        .expect("updated");
    let a = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(a.product_description.as_deref().map(String::as_str), Some("Every article"));
    assert_eq!(a.external_id.as_deref(), Some("sub-42"));
    assert_eq!(a.merchant_agreement_url, "https://example.com/my-subscription");
    assert!(matches!(a.pricing, PricingResponse::LegacyPricingResponse(ref p) if p.amount == 19900));
    assert_eq!(a.interval.count, Some(2));
    assert_eq!(a.interval.text.as_deref(), Some("every 2 weeks"));

    // suggestedMaxAmount belongs to VARIABLE pricing; a FLEXIBLE interval takes no period.
    let wrong = vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"productName": "Changed", "pricing": {"suggestedMaxAmount": 5000}})))
        .send()
        .await;
    assert_eq!(failure(wrong), (Some(400), "pricing.suggestedMaxAmount".to_owned()));
    let wrong = vipps
        .recurring()
        .update_agreement()
        .agreement_id(&agreement_id)
        .body(patch_body(json!({"interval": {"type": "FLEXIBLE", "period": {"unit": "DAY", "count": 1}}})))
        .send()
        .await;
    assert_eq!(failure(wrong), (Some(400), "interval.period".to_owned()));
    let unchanged = fetch_agreement(&vipps, &agreement_id).await;
    assert_eq!(unchanged.product_name.as_str(), "MyNews Digital");
    assert_eq!(unchanged, a);
}

#[tokio::test]
async fn another_merchant_serial_number_sees_none_of_the_agreements() {
    let (_sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, PHONE).await;
    let other = vipps.merchant("654321").unwrap();
    let fetched = other.recurring().fetch_agreement().agreement_id(&agreement_id).send().await;
    assert_eq!(failure(fetched).0, Some(404));
    assert!(other.recurring().list_agreements().send().await.unwrap().into_inner().is_empty());
}

#[tokio::test]
async fn force_accept_answers_404_outside_test_mode() {
    let sandbox = Sandbox::builder().test_mode(false).start().await.unwrap();
    let vipps = support::client(&sandbox);
    let (agreement_id, _) = draft(&vipps, draft_json()).await;
    let accepted = vipps
        .recurring()
        .force_accept_agreement()
        .agreement_id(&agreement_id)
        .body(ForceAcceptAgreementV3 { phone_number: PHONE.into() })
        .send()
        .await;
    assert_eq!(failure(accepted).0, Some(404));
    assert_eq!(fetch_agreement(&vipps, &agreement_id).await.status, Some(AgreementStatus::Pending));
}

// ---------------------------------------------------------------------------------------
// Charges
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_recurring_charge_is_pending_then_due_then_processed_on_its_due_date() {
    let (sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, PHONE).await;
    let reserve = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 1000, "transactionType": "RESERVE_CAPTURE", "description": "A", "due": due_in(&sandbox, 3), "retryDays": 0}),
    )
    .await;
    let direct = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 2000, "transactionType": "DIRECT_CAPTURE", "description": "B", "due": due_in(&sandbox, 3), "retryDays": 0}),
    )
    .await;
    assert_eq!(fetch_charge(&vipps, &agreement_id, &reserve).await.status, ChargeStatus::Pending);
    sandbox.advance_clock(DAY).unwrap();
    assert_eq!(fetch_charge(&vipps, &agreement_id, &reserve).await.status, ChargeStatus::Pending);
    sandbox.advance_clock(DAY).unwrap();
    assert_eq!(fetch_charge(&vipps, &agreement_id, &reserve).await.status, ChargeStatus::Due);
    assert_eq!(fetch_charge(&vipps, &agreement_id, &direct).await.status, ChargeStatus::Due);
    sandbox.advance_clock(DAY).unwrap();
    let reserved = fetch_charge(&vipps, &agreement_id, &reserve).await;
    assert_eq!((reserved.status, reserved.summary.captured), (ChargeStatus::Reserved, 0));
    let charged = fetch_charge(&vipps, &agreement_id, &direct).await;
    assert_eq!((charged.status, charged.summary.captured), (ChargeStatus::Charged, 2000));
    assert_eq!(
        charged.history.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        [ChargeEventEvent::Create, ChargeEventEvent::Capture]
    );
    // The status filter of the charge list.
    let only_reserved = all_charges(&vipps, &agreement_id, Some(ChargeStatus::Reserved)).await;
    assert_eq!(only_reserved.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(), [reserve]);
}

#[tokio::test]
async fn charges_fail_for_the_failing_test_customer_and_above_a_variable_maximum() {
    let (sandbox, vipps) = support::start().await;
    let agreement_id = active_agreement(&vipps, FAILING_PHONE_NUMBER).await;
    let at_once = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "A", "due": due_in(&sandbox, 1), "retryDays": 0}),
    )
    .await;
    let retried = create_charge(
        &vipps,
        &agreement_id,
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "B", "due": due_in(&sandbox, 1), "retryDays": 2}),
    )
    .await;
    sandbox.advance_clock(DAY).unwrap();
    let failed = fetch_charge(&vipps, &agreement_id, &at_once).await;
    assert_eq!(failed.status, ChargeStatus::Failed);
    assert_eq!(failed.failure_reason.map(|r| r.to_string()).as_deref(), Some("user_action_required"));
    assert_eq!(failed.history.last().map(|e| (e.event.clone(), e.success)), Some((ChargeEventEvent::Fail, false)));
    // Retried for two more days, then FAILED.
    sandbox.advance_clock(DAY).unwrap();
    assert_eq!(fetch_charge(&vipps, &agreement_id, &retried).await.status, ChargeStatus::Due);
    sandbox.advance_clock(DAY).unwrap();
    assert_eq!(fetch_charge(&vipps, &agreement_id, &retried).await.status, ChargeStatus::Failed);

    // VARIABLE pricing: the test customer takes the suggested maximum; more than that fails.
    let mut body = draft_json();
    body["pricing"] = json!({"type": "VARIABLE", "suggestedMaxAmount": 3000, "currency": "NOK"});
    let (variable, _) = draft(&vipps, body).await;
    accept(&vipps, &variable, PHONE).await;
    let a = fetch_agreement(&vipps, &variable).await;
    assert!(matches!(a.pricing, PricingResponse::VariableAmountPricingResponse(ref p) if p.max_amount == Some(3000)));
    let within = unscheduled(&vipps, &variable, 3000, "DIRECT_CAPTURE").await;
    let above = unscheduled(&vipps, &variable, 3001, "DIRECT_CAPTURE").await;
    assert_eq!(fetch_charge(&vipps, &variable, &within).await.status, ChargeStatus::Charged);
    let above = fetch_charge(&vipps, &variable, &above).await;
    assert_eq!(above.status, ChargeStatus::Failed);
    assert_eq!(above.failure_reason.map(|r| r.to_string()).as_deref(), Some("charge_amount_too_high"));
}

#[tokio::test]
async fn capture_refund_and_cancel_follow_the_documented_rules() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;

    // Partial captures, then the rest.
    let c = unscheduled(&vipps, &a, 10000, "RESERVE_CAPTURE").await;
    capture(&vipps, &a, &c, 4000).await.unwrap();
    assert_eq!(fetch_charge(&vipps, &a, &c).await.status, ChargeStatus::PartiallyCaptured);
    let too_much = capture(&vipps, &a, &c, 6001).await;
    assert_eq!(failure(too_much), (Some(400), "amount".to_owned()));
    assert_eq!(fetch_charge(&vipps, &a, &c).await.summary.captured, 4000);
    capture(&vipps, &a, &c, 6000).await.unwrap();
    assert_eq!(fetch_charge(&vipps, &a, &c).await.status, ChargeStatus::Charged);
    assert_eq!(failure(capture(&vipps, &a, &c, 100).await).0, Some(409));

    // Refunds: not more than captured; part, then all.
    let too_much = refund(&vipps, &a, &c, 10001).await;
    assert_eq!(failure(too_much), (Some(400), "amount".to_owned()));
    refund(&vipps, &a, &c, 2500).await.unwrap();
    assert_eq!(fetch_charge(&vipps, &a, &c).await.status, ChargeStatus::PartiallyRefunded);
    refund(&vipps, &a, &c, 7500).await.unwrap();
    let refunded = fetch_charge(&vipps, &a, &c).await;
    assert_eq!((refunded.status, refunded.summary.refunded), (ChargeStatus::Refunded, 10000));
    assert_eq!(failure(refund(&vipps, &a, &c, 100).await).0, Some(409));

    // Amounts below 100 are refused by capture and refund too.
    // (The generated types check `minimum: 100` before sending.)
    let r = unscheduled(&vipps, &a, 10000, "RESERVE_CAPTURE").await;
    let err = capture(&vipps, &a, &r, 99).await.expect_err("below the minimum");
    assert!(matches!(&err, vipps_core::Error::InvalidInput { message } if message.contains("minimum 100")), "{err}");
    // A reservation has nothing to refund yet; a DIRECT_CAPTURE charge cannot be captured.
    assert_eq!(failure(refund(&vipps, &a, &r, 1000).await).0, Some(409));
    let d = unscheduled(&vipps, &a, 10000, "DIRECT_CAPTURE").await;
    assert_eq!(failure(capture(&vipps, &a, &d, 1000).await).0, Some(409));

    // Cancel: a reservation is CANCELLED; a charged one cannot be cancelled.
    cancel(&vipps, &a, &r).await.unwrap();
    let cancelled = fetch_charge(&vipps, &a, &r).await;
    assert_eq!((cancelled.status, cancelled.summary.cancelled), (ChargeStatus::Cancelled, 10000));
    assert_eq!(failure(cancel(&vipps, &a, &r).await).0, Some(409));
    assert_eq!(failure(cancel(&vipps, &a, &d).await).0, Some(409));

    // Cancel after a partial capture releases the rest: CHARGED for what was captured.
    let p = unscheduled(&vipps, &a, 10000, "RESERVE_CAPTURE").await;
    capture(&vipps, &a, &p, 3000).await.unwrap();
    cancel(&vipps, &a, &p).await.unwrap();
    let p = fetch_charge(&vipps, &a, &p).await;
    assert_eq!((p.status, p.summary.captured, p.summary.cancelled), (ChargeStatus::Charged, 3000, 7000));

    // A pending (future) charge can be cancelled.
    let future = create_charge(
        &vipps,
        &a,
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "F", "due": due_in(&sandbox, 20), "retryDays": 0}),
    )
    .await;
    cancel(&vipps, &a, &future).await.unwrap();
    assert_eq!(fetch_charge(&vipps, &a, &future).await.status, ChargeStatus::Cancelled);

    // Unknown ids are 404.
    assert_eq!(failure(cancel(&vipps, &a, "nope").await).0, Some(404));
    let by_id = vipps.recurring().fetch_charge_by_id().charge_id("nope").send().await;
    assert_eq!(failure(by_id).0, Some(404));
}

#[tokio::test]
async fn charges_are_paged_with_a_continuation_token() {
    let sandbox = Sandbox::builder().charges_page_size(2).start().await.unwrap();
    let vipps = support::client(&sandbox);
    let a = active_agreement(&vipps, PHONE).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 { "RESERVE_CAPTURE" } else { "DIRECT_CAPTURE" };
        ids.push(unscheduled(&vipps, &a, 1000 + i, kind).await);
    }

    // The first page by hand: two charges and a token.
    let first = vipps.recurring().list_charges().agreement_id(&a).send().await.unwrap();
    let token = first.headers().get("continuation-token").expect("a token").to_str().unwrap().to_owned();
    assert_eq!(first.into_inner().len(), 2);
    let second =
        vipps.recurring().list_charges().agreement_id(&a).continuation_token(token.as_str()).send().await.unwrap();
    assert!(second.headers().get("continuation-token").is_some());
    assert_eq!(second.into_inner().iter().map(|c| c.id.to_string()).collect::<Vec<_>>(), ids[2..4]);

    // The facade's stream follows the tokens to the end.
    let all = all_charges(&vipps, &a, None).await;
    assert_eq!(all.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(), ids);
    let reserved = all_charges(&vipps, &a, Some(ChargeStatus::Reserved)).await;
    assert_eq!(
        reserved.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(),
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    let charged = all_charges(&vipps, &a, Some(ChargeStatus::Charged)).await;
    assert_eq!(charged.len(), 2);
    assert!(all_charges(&vipps, &a, Some(ChargeStatus::Failed)).await.is_empty());

    // A token nobody issued is a 400 naming the header.
    let unknown = vipps
        .recurring()
        .list_charges()
        .agreement_id(&a)
        .continuation_token("5f0c8a52-1c1e-4d5c-9a57-3f8c1d0e2b11")
        .send()
        .await;
    assert_eq!(failure(unknown), (Some(400), "Continuation-Token".to_owned()));
}

#[tokio::test]
async fn create_multiple_charges_lists_the_valid_and_the_invalid_ones() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;
    let (pending, _) = draft(&vipps, draft_json()).await;
    let due = due_in(&sandbox, 2);
    let item = |agreement: &str, amount: u32, order: &str| json!({"agreementId": agreement, "amount": amount, "transactionType": "DIRECT_CAPTURE", "description": "Batch", "due": due, "retryDays": 1, "orderId": order});
    // An amount below `minimum: 100` does not get past the generated types, so the batch that
    // holds one goes raw. The sandbox reads the batch into the same types, so the whole batch
    // is a 400 naming the item (it used to list the item as invalid).
    let raw_batch = json!([item(&a, 1000, "b-0"), item(&a, 99, "b-2")]);
    assert!(serde_json::from_value::<Vec<CreateChargeAsyncV3>>(raw_batch.clone()).is_err());
    let (status, answer) = raw(&sandbox, "POST", "/recurring/v3/agreements/charges", Some(raw_batch)).await;
    assert_eq!((status, raw_field(&answer)), (400, "[1].amount"), "{answer}");
    assert_eq!(charge_count(&sandbox), 0);
    let batch: Vec<CreateChargeAsyncV3> = serde_json::from_value(json!([
        item(&a, 1000, "b-1"),
        item("agr_missing", 1000, "b-3"),
        item(&pending, 1000, "b-4"),
        item(&a, 1000, "b-1"),
        item(&a, 2000, "b-5"),
    ]))
    .unwrap();
    let answer = vipps.recurring().create_charges().body(batch).send().await.unwrap().into_inner();
    assert_eq!(answer.valid_charges, ["b-1", "b-5"]);
    let invalid: Vec<_> = answer.invalid_charges.iter().map(|i| i.charge_batch_item_dto.order_id.to_string()).collect();
    assert_eq!(invalid, ["b-3", "b-4", "b-1"]);
    assert_eq!(charge_count(&sandbox), 2);
    assert_eq!(fetch_charge(&vipps, &a, "b-5").await.amount, 2000);
}

// ---------------------------------------------------------------------------------------
// Requests that break the spec or the rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_charge_of_99_is_a_400_naming_amount_and_creates_nothing() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;
    // The generated type checks `minimum: 100`: it does not read 99, and a charge built in
    // code with 99 is refused before it is sent. Sent raw, the sandbox refuses it too.
    let body = json!({"amount": 99, "transactionType": "DIRECT_CAPTURE", "description": "Too small", "due": due_in(&sandbox, 2), "retryDays": 0});
    assert!(serde_json::from_value::<CreateChargeV3>(body.clone()).is_err());
    let mut built = charge_body(json!({"amount": 100, "transactionType": "DIRECT_CAPTURE", "description": "Too small", "due": due_in(&sandbox, 2), "retryDays": 0}));
    built.amount = 99;
    let err = vipps.recurring().create_charge().agreement_id(&a).body(built).send().await.unwrap_err();
    assert!(matches!(&err, vipps_core::Error::InvalidInput { message } if message.contains("minimum 100")), "{err}");
    let (status, answer) = raw(&sandbox, "POST", &format!("/recurring/v3/agreements/{a}/charges"), Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "amount"));
    assert_eq!(charge_count(&sandbox), 0);
    assert!(all_charges(&vipps, &a, None).await.is_empty());
}

#[tokio::test]
async fn an_order_id_with_a_space_is_a_400_naming_order_id() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;
    // The generated type refuses it client-side, so send it raw.
    assert!(vipps_recurring::types::CreateChargeV3OrderId::try_from("order 1").is_err());
    let body = json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due_in(&sandbox, 2), "retryDays": 0, "orderId": "order 1"});
    let (status, answer) = raw(&sandbox, "POST", &format!("/recurring/v3/agreements/{a}/charges"), Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "orderId"));
    assert_eq!(charge_count(&sandbox), 0);

    // An order id longer than the 15 characters a charge id may have in the response.
    let long = charge_body(
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due_in(&sandbox, 2), "retryDays": 0, "orderId": "order-0123456789"}),
    );
    let result = vipps.recurring().create_charge().agreement_id(&a).body(long).send().await;
    assert_eq!(failure(result), (Some(400), "orderId".to_owned()));
    // A duplicate order id is a conflict.
    create_charge(&vipps, &a, json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "type": "UNSCHEDULED", "orderId": "o-1"})).await;
    let dup = charge_body(
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "y", "type": "UNSCHEDULED", "orderId": "o-1"}),
    );
    let result = vipps.recurring().create_charge().agreement_id(&a).body(dup).send().await;
    assert_eq!(failure(result).0, Some(409));
    assert_eq!(charge_count(&sandbox), 1);
}

#[tokio::test]
async fn missing_required_fields_are_a_400_naming_them() {
    let (sandbox, vipps) = support::start().await;

    // Draft without productName (raw: the generated type needs it).
    let mut body = draft_json();
    body.as_object_mut().unwrap().remove("productName");
    let (status, answer) = raw(&sandbox, "POST", "/recurring/v3/agreements", Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "productName"));
    // LEGACY pricing without an amount (the type allows it; the rule does not).
    let mut body = draft_json();
    body["pricing"] = json!({"type": "LEGACY", "currency": "NOK"});
    let result = vipps.recurring().draft_agreement().body(draft_body(body)).send().await;
    assert_eq!(failure(result), (Some(400), "pricing.amount".to_owned()));
    // A Norwegian agreement without merchantAgreementUrl.
    let mut body = draft_json();
    body.as_object_mut().unwrap().remove("merchantAgreementUrl");
    let result = vipps.recurring().draft_agreement().body(draft_body(body)).send().await;
    assert_eq!(failure(result), (Some(400), "merchantAgreementUrl".to_owned()));
    assert_eq!(agreement_count(&sandbox), 0);

    // A RECURRING charge without due or retryDays; a refund without description (raw).
    let a = active_agreement(&vipps, PHONE).await;
    let no_due =
        charge_body(json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "retryDays": 0}));
    let result = vipps.recurring().create_charge().agreement_id(&a).body(no_due).send().await;
    assert_eq!(failure(result), (Some(400), "due".to_owned()));
    let no_retry = charge_body(
        json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due_in(&sandbox, 2)}),
    );
    let result = vipps.recurring().create_charge().agreement_id(&a).body(no_retry).send().await;
    assert_eq!(failure(result), (Some(400), "retryDays".to_owned()));
    let (status, answer) = raw(
        &sandbox,
        "POST",
        &format!("/recurring/v3/agreements/{a}/charges"),
        Some(json!({"amount": 1000, "description": "x", "type": "UNSCHEDULED"})),
    )
    .await;
    assert_eq!((status, raw_field(&answer)), (400, "transactionType"));
    let c = unscheduled(&vipps, &a, 1000, "DIRECT_CAPTURE").await;
    let (status, answer) = raw(
        &sandbox,
        "POST",
        &format!("/recurring/v3/agreements/{a}/charges/{c}/refund"),
        Some(json!({"amount": 500})),
    )
    .await;
    assert_eq!((status, raw_field(&answer)), (400, "description"));
    assert_eq!(fetch_charge(&vipps, &a, &c).await.summary.refunded, 0);
    // Force-accept without phoneNumber.
    let (pending, _) = draft(&vipps, draft_json()).await;
    let (status, answer) =
        raw(&sandbox, "PATCH", &format!("/recurring/v3/agreements/{pending}/accept"), Some(json!({}))).await;
    assert_eq!((status, raw_field(&answer)), (400, "phoneNumber"));
    assert_eq!(fetch_agreement(&vipps, &pending).await.status, Some(AgreementStatus::Pending));
    assert_eq!(charge_count(&sandbox), 1);
}

#[tokio::test]
async fn due_dates_follow_the_test_environment_rules() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;
    for (due, why) in [(due_in(&sandbox, 0), "today"), (due_in(&sandbox, -3), "past")] {
        let body = charge_body(
            json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due, "retryDays": 0}),
        );
        let result = vipps.recurring().create_charge().agreement_id(&a).body(body).send().await;
        assert_eq!(failure(result), (Some(400), "due".to_owned()), "{why}");
    }
    // A due date that is not a date: the generated type (a date) does not read it, and the
    // sandbox refuses it sent raw.
    let body = json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": "31.12.2030", "retryDays": 0});
    assert!(serde_json::from_value::<CreateChargeV3>(body.clone()).is_err());
    let (status, answer) = raw(&sandbox, "POST", &format!("/recurring/v3/agreements/{a}/charges"), Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "due"), "{answer}");
    // `retryDays` over the spec's `maximum: 14`: the generated type does not read it, and the
    // sandbox refuses it sent raw.
    let body = json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due_in(&sandbox, 1), "retryDays": 15});
    assert!(serde_json::from_value::<CreateChargeV3>(body.clone()).is_err());
    let (status, answer) = raw(&sandbox, "POST", &format!("/recurring/v3/agreements/{a}/charges"), Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "retryDays"));
    assert_eq!(charge_count(&sandbox), 0);
    // One day ahead is enough.
    create_charge(&vipps, &a, json!({"amount": 1000, "transactionType": "DIRECT_CAPTURE", "description": "x", "due": due_in(&sandbox, 1), "retryDays": 14})).await;
    assert_eq!(charge_count(&sandbox), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_replays_and_another_body_conflicts() {
    let (sandbox, vipps) = support::start().await;
    let a = active_agreement(&vipps, PHONE).await;
    let body = || {
        charge_body(
            json!({"amount": 1000, "transactionType": "RESERVE_CAPTURE", "description": "Once", "type": "UNSCHEDULED"}),
        )
    };
    let client = vipps.recurring();
    let send = |body: CreateChargeV3| {
        client.create_charge().agreement_id(&a).idempotency_key("charge-key-1").body(body).send()
    };
    let first = send(body()).await.unwrap().into_inner().charge_id;
    let again = send(body()).await.unwrap().into_inner().charge_id;
    assert_eq!(first, again);
    assert_eq!(charge_count(&sandbox), 1);
    let mut other = body();
    other.amount = 2000;
    assert_eq!(failure(send(other).await).0, Some(409));
    assert_eq!(charge_count(&sandbox), 1);
    // The charge's history records the key that created it.
    let charge = fetch_charge(&vipps, &a, first.as_deref().unwrap()).await;
    assert_eq!(charge.history[0].idempotency_key, "charge-key-1");
}
