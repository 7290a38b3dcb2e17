//! The lines a user writes first, written the natural way, compile and work: a subscription
//! flow with no `.map_err`, no `Some(` in a builder and no `.try_into()` on a literal; the
//! SDK's `IdempotencyKey` where a key goes; a value that breaks the spec says why; the
//! Recurring and ePayment helpers inside `tokio::spawn`.

mod support;

use support::client;
use vipps::recurring::types::{
    AgreementStatus, ChargeResponseV3, CreateChargeV3, CurrencyV3, DraftAgreementV3, ForceAcceptAgreementV3,
    PatchAgreementV3, PricingRequest, PricingRequestType, TimePeriod, TimePeriodUnit, TransactionType,
};
use vipps::{Error, IdempotencyKey, Vipps};
use vipps_sandbox::Sandbox;

const PHONE: &str = "4791234567";

/// The draft a user writes: every optional field set by its value.
fn draft() -> vipps::recurring::types::builder::DraftAgreementV3 {
    DraftAgreementV3::builder()
        .product_name("Premium membership")
        .product_description("Monthly premium membership")
        .pricing(PricingRequest::builder().type_(PricingRequestType::Legacy).amount(29_900).currency(CurrencyV3::Nok))
        .interval(TimePeriod::builder().unit(TimePeriodUnit::Month).count(1))
        .merchant_redirect_url("https://example.com/return")
        .merchant_agreement_url("https://example.com/subscriptions")
        .phone_number(PHONE)
}

/// A whole subscription flow in a function that returns the SDK's error: every `?` converts.
async fn subscribe(vipps: &Vipps) -> Result<(String, Vec<ChargeResponseV3>), Error> {
    let recurring = vipps.recurring();
    let created = recurring
        .draft_agreement()
        .idempotency_key(IdempotencyKey::generate())
        .body(draft())
        .send()
        .await?
        .into_inner();
    let agreement_id = created.agreement_id;
    let key = IdempotencyKey::new("accept-1")?;
    recurring
        .force_accept_agreement()
        .agreement_id(&agreement_id)
        .idempotency_key(&key)
        .body(ForceAcceptAgreementV3::builder().phone_number(PHONE))
        .send()
        .await?;
    let due = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    recurring
        .create_charge()
        .agreement_id(&agreement_id)
        .idempotency_key(IdempotencyKey::generate())
        .body(
            CreateChargeV3::builder()
                .amount(29_900)
                .description("Second month")
                .due(due)
                .retry_days(5)
                .transaction_type(TransactionType::DirectCapture),
        )
        .send()
        .await?;
    let charges = vipps::recurring::collect(vipps::recurring::charges(&recurring, &agreement_id, None)).await?;
    Ok((agreement_id, charges))
}

#[tokio::test]
async fn a_subscription_written_the_natural_way_runs() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let (agreement_id, charges) = subscribe(&vipps).await.unwrap();
    assert_eq!(charges.len(), 1, "the charge created in the flow: {charges:?}");
    assert_eq!(charges[0].amount, 29_900);
    let agreement = vipps.recurring().fetch_agreement().agreement_id(&agreement_id).send().await.unwrap().into_inner();
    assert_eq!(agreement.status, Some(AgreementStatus::Active));
    assert_eq!(agreement.product_description.as_deref().map(String::as_str), Some("Monthly premium membership"));
}

#[test]
fn an_optional_field_can_be_cleared_again() {
    let set = vipps::recurring::types::DraftAgreementV3::try_from(draft()).unwrap();
    assert_eq!(set.phone_number.as_deref().map(String::as_str), Some(PHONE));
    let cleared = vipps::recurring::types::DraftAgreementV3::try_from(draft().clear_phone_number()).unwrap();
    assert_eq!(cleared.phone_number, None);
    // A request type whose fields are all optional starts from `Default`.
    let patch = PatchAgreementV3::default();
    assert!(patch.pricing.is_none() && patch.product_name.is_none());
    let patch = PatchAgreementV3::try_from(PatchAgreementV3::builder().product_name("Renamed")).unwrap();
    assert_eq!(patch.product_name.as_deref().map(String::as_str), Some("Renamed"));
}

#[tokio::test]
async fn a_value_that_breaks_the_spec_says_why() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let before = sandbox.calls();
    // A typify builder: the setter checks the value and the error keeps its reason.
    let err = vipps
        .recurring()
        .draft_agreement()
        .body(draft().phone_number("479123456789012345"))
        .send()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("phone_number") && err.contains("longer than 15 characters"), "{err}");
    // A progenitor builder: the parameter's reason is kept too (it used to be dropped).
    let err = vipps
        .recurring()
        .create_charge()
        .agreement_id("agr_1")
        .idempotency_key("not/allowed")
        .body(CreateChargeV3::builder().amount(100).description("x").transaction_type(TransactionType::DirectCapture))
        .send()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("idempotency_key failed: doesn't match pattern"), "{err}");
    assert_eq!(sandbox.calls(), before, "nothing was sent, not even a token request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recurring_helpers_run_inside_tokio_spawn() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let (agreement_id, _) = subscribe(&vipps).await.unwrap();
    let recurring = vipps.recurring();
    let listed = tokio::spawn(async move {
        vipps::recurring::collect(vipps::recurring::agreements(&recurring, AgreementStatus::Active, 2)).await
    });
    let listed = listed.await.unwrap().unwrap();
    assert!(listed.iter().any(|a| a.id.as_str() == agreement_id), "{listed:?}");
    let recurring = vipps.recurring();
    let waited = tokio::spawn(async move {
        let wait = std::time::Duration::from_secs(5);
        vipps::recurring::wait_for_agreement_status(&recurring, &agreement_id, AgreementStatus::Active, wait, wait).await
    });
    assert_eq!(waited.await.unwrap().unwrap().status, Some(AgreementStatus::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epayment_helpers_run_inside_tokio_spawn() {
    use vipps::epayment::types::{
        Amount, CreatePaymentRequest, CreatePaymentRequestUserFlow, Currency, ForceApprove, PaymentMethod,
        PaymentMethodType, State,
    };
    let sandbox = Sandbox::start().await.unwrap();
    let epayment = client(&sandbox).epayment();
    let nok = |value| Amount { currency: Currency::Nok, value };
    // Every helper's future is awaited inside the spawned task: it compiles only if each is `Send`.
    let task = tokio::spawn(async move {
        let body = |value| {
            CreatePaymentRequest::builder()
                .amount(nok(value))
                .payment_method(PaymentMethod { type_: PaymentMethodType::Wallet })
                .user_flow(CreatePaymentRequestUserFlow::WebRedirect)
                .return_url("https://example.com/return")
        };
        let created = vipps::epayment::NewPayment::new(body(10_000))?.create(&epayment).await?;
        let reference = created.reference.as_str();
        epayment.force_approve().reference(reference).body(ForceApprove::default()).send().await?;
        let wait = std::time::Duration::from_secs(5);
        vipps::epayment::wait_for_state(&epayment, reference, State::Authorized, wait, vipps::epayment::Backoff::default()).await?;
        vipps::epayment::capture(&epayment, reference, nok(6_000), &IdempotencyKey::generate()).await?;
        vipps::epayment::refund(&epayment, reference, nok(1_000), &IdempotencyKey::generate()).await?;
        vipps::epayment::cancel(&epayment, reference, &IdempotencyKey::generate()).await?;
        let again = vipps::epayment::create_payment(&epayment, body(100)).await?;
        assert_ne!(again.reference, created.reference);
        vipps::epayment::events(&epayment, reference).await
    });
    let events = task.await.unwrap().unwrap();
    let names: Vec<_> = events.iter().map(|e| e.name.as_ref().unwrap().to_string()).collect();
    assert_eq!(names, ["CREATED", "AUTHORIZED", "CAPTURED", "REFUNDED", "CANCELLED"]);
}

/// A request type whose fields are all optional is `Default`: a struct literal names only what
/// it sets, and only that is sent.
#[test]
fn an_all_optional_request_is_built_with_default() {
    let patch = PatchAgreementV3 { status: Some(vipps::recurring::types::PatchAgreementV3Status::Stopped), ..Default::default() };
    assert_eq!(serde_json::to_value(&patch).unwrap(), serde_json::json!({"status": "STOPPED"}));
}
