//! The ePayment helpers of the facade (`vipps::epayment::{NewPayment, wait_for_state, capture,
//! refund, cancel, events}`) against the sandbox: a generated reference the spec admits, a
//! retried creation that makes one payment, waits that end at their deadline on paused time
//! after a bounded number of reads, amounts checked against the aggregate with no modification
//! request sent, a retried modification that is not refused, and the event log oldest first.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vipps::epayment::types::{
    Amount, CreatePaymentRequest, CreatePaymentRequestUserFlow, Currency, ForceApprove, PaymentEventName, PaymentMethod,
    PaymentMethodType, State,
};
use axum::response::IntoResponse;
use vipps::epayment::{Backoff, NewPayment, Until};
use vipps::{Error, IdempotencyKey, Vipps};
use vipps_core::Limit;
use vipps_sandbox::Sandbox;

fn body(value: u64) -> vipps::epayment::types::builder::CreatePaymentRequest {
    CreatePaymentRequest::builder()
        .amount(nok(value))
        .payment_method(PaymentMethod { type_: PaymentMethodType::Wallet })
        .user_flow(CreatePaymentRequestUserFlow::WebRedirect)
        .return_url("https://shop.example.com/return")
        .payment_description("Two pairs of socks")
}

fn nok(value: u64) -> Amount {
    Amount { currency: Currency::Nok, value }
}

async fn approve(vipps: &Vipps, reference: &str) {
    vipps.epayment().force_approve().reference(reference).body(ForceApprove::default()).send().await.unwrap();
}

fn payments(sandbox: &Sandbox) -> usize {
    sandbox.state().epayment.lock().unwrap().payment_count()
}

fn invalid_input(err: &Error) -> &str {
    match err {
        Error::InvalidInput { message } => message,
        other => panic!("not an InvalidInput: {other:?}"),
    }
}

#[tokio::test]
async fn a_generated_reference_fits_the_spec_and_a_retried_creation_makes_one_payment() {
    let (sandbox, vipps) = support::start().await;
    let epayment = vipps.epayment();
    let payment = NewPayment::new(body(10_000)).unwrap();
    let reference = payment.reference().to_string();
    assert!((8..=50).contains(&reference.len()), "{reference}");
    assert!(reference.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{reference}");
    assert_eq!(payment.body().reference.as_str(), reference, "the body carries the generated reference");

    let first = payment.create(&epayment).await.unwrap();
    // The answer was lost, say: the same NewPayment is sent again.
    let again = payment.create(&epayment).await.unwrap();
    assert_eq!(payments(&sandbox), 1, "a retry with the same key must not create a second payment");
    assert_eq!((first.reference.as_str(), again.reference.as_str()), (reference.as_str(), reference.as_str()));
    assert_eq!(first.response, again.response, "the retry gets the first answer");
    assert_eq!(first.idempotency_key, *payment.idempotency_key());
    let log = vipps::epayment::events(&epayment, &reference).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].idempotency_key.as_deref().map(String::as_str), Some(payment.idempotency_key().as_str()));

    // Another NewPayment is another payment, with its own reference and key.
    let other = vipps::epayment::create_payment(&epayment, body(500)).await.unwrap();
    assert_ne!(other.reference, first.reference);
    assert_ne!(other.idempotency_key, first.idempotency_key);
    assert_eq!(payments(&sandbox), 2);
}

#[tokio::test]
async fn a_creation_that_failed_is_retried_into_one_payment() {
    let (sandbox, vipps) = support::start().await;
    let epayment = vipps.epayment();
    let payment = NewPayment::new(body(10_000)).unwrap();
    sandbox.fail_next(1, 500); // not retried by the runtime: a 500 may have done something
    assert_eq!(payment.create(&epayment).await.unwrap_err().status(), Some(500));
    assert_eq!(payments(&sandbox), 0);
    payment.create(&epayment).await.unwrap();
    payment.create(&epayment).await.unwrap();
    assert_eq!(payments(&sandbox), 1);
}

#[tokio::test]
async fn a_payment_that_breaks_the_spec_is_refused_before_anything_is_sent() {
    let (sandbox, vipps) = support::start().await;
    let before = sandbox.calls();
    let err = vipps::epayment::create_payment(&vipps.epayment(), body(10_000).user_flow("SIDEWAYS")).await.unwrap_err();
    assert!(invalid_input(&err).contains("user_flow"), "{err}");
    let err = NewPayment::with_reference("no spaces allowed", body(10_000)).unwrap_err();
    assert!(invalid_input(&err).contains("the payment reference"), "{err}");
    let err = NewPayment::new(CreatePaymentRequest::builder().amount(nok(100))).unwrap_err();
    assert!(invalid_input(&err).contains("the payment request"), "{err}");
    assert_eq!(sandbox.calls(), before, "nothing was sent, not even a token request");
    let mine = NewPayment::with_reference("order-12345", body(100)).unwrap();
    assert_eq!(mine.reference().as_str(), "order-12345");
}

/// A sandbox that payments wait in for an hour, and a paused-time client for it.
async fn paused() -> (Sandbox, Vipps) {
    let sandbox = Sandbox::builder().epayment_expiry(Duration::from_secs(3600)).start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    (sandbox, vipps)
}

const BACKOFF: Backoff = Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2), factor: 2 };

#[tokio::test(start_paused = true)]
async fn a_wait_ends_at_its_deadline_after_a_bounded_number_of_reads() {
    let (sandbox, vipps) = paused().await;
    let epayment = vipps.epayment();
    let created = vipps::epayment::create_payment(&epayment, body(10_000)).await.unwrap();
    let before = sandbox.calls();
    let start = tokio::time::Instant::now();
    let err = vipps::epayment::wait_for_state(&epayment, &created.reference, State::Authorized, Duration::from_secs(10), BACKOFF)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { limit: Limit::Wait, after } if after == Duration::from_secs(10)), "{err:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(10), "it returns at the deadline, not after");
    // Reads at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 5.1, 7.1 and 9.1 s: the waits double up to 2 s.
    assert_eq!(sandbox.calls() - before, 9);
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_at_its_deadline_even_in_the_middle_of_a_read() {
    let (sandbox, vipps) = paused().await;
    let epayment = vipps.epayment();
    let created = vipps::epayment::create_payment(&epayment, body(10_000)).await.unwrap();
    sandbox.set_latency(Duration::from_secs(3600));
    let start = tokio::time::Instant::now();
    let err = vipps::epayment::wait_for_state(&epayment, &created.reference, Until::Decided, Duration::from_secs(5), BACKOFF)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_wait_returns_at_the_first_read_after_the_approval() {
    let (_sandbox, vipps) = paused().await;
    let epayment = vipps.epayment();
    let created = vipps::epayment::create_payment(&epayment, body(10_000)).await.unwrap();
    let approver = vipps.clone();
    let reference = created.reference.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        approve(&approver, &reference).await;
    });
    let start = tokio::time::Instant::now();
    let payment = vipps::epayment::wait_for_state(
        &epayment,
        &created.reference,
        Until::AnyOf(vec![State::Authorized, State::Aborted]),
        Duration::from_secs(60),
        BACKOFF,
    )
    .await
    .unwrap();
    assert_eq!(payment.state, State::Authorized);
    assert_eq!(start.elapsed(), Duration::from_millis(1500), "the read after the approval at 1 s");
}

#[tokio::test(start_paused = true)]
async fn a_final_state_that_is_not_wanted_ends_the_wait_at_once() {
    let sandbox = Sandbox::builder().epayment_expiry(Duration::from_secs(3)).start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    let epayment = vipps.epayment();
    let created = vipps::epayment::create_payment(&epayment, body(10_000)).await.unwrap();
    let start = tokio::time::Instant::now();
    let err = vipps::epayment::wait_for_state(&epayment, &created.reference, State::Authorized, Duration::from_secs(60), BACKOFF)
        .await
        .unwrap_err();
    match &err {
        Error::FinalState { state, wanted, .. } => assert_eq!((state.as_str(), wanted.as_str()), ("EXPIRED", "AUTHORIZED")),
        other => panic!("{other:?}"),
    }
    // Expired at 3 s, seen at the read at 3.1 s, not at the 60 s deadline.
    assert_eq!(start.elapsed(), Duration::from_millis(3100));
    // Waiting for a final state (or any decision) returns it.
    let payment = vipps::epayment::wait_for_state(&epayment, &created.reference, Until::Final, Duration::from_secs(1), BACKOFF)
        .await
        .unwrap();
    assert_eq!(payment.state, State::Expired);
}

#[tokio::test]
async fn a_useless_wait_is_refused() {
    let (sandbox, vipps) = support::start().await;
    let before = sandbox.calls();
    let zero = Backoff { first: Duration::ZERO, ..Backoff::default() };
    let err = vipps::epayment::wait_for_state(&vipps.epayment(), "order-1234", State::Authorized, Duration::from_secs(1), zero)
        .await
        .unwrap_err();
    assert!(invalid_input(&err).contains("backoff"), "{err}");
    let err = vipps::epayment::wait_for_state(&vipps.epayment(), "order-1234", Until::AnyOf(vec![]), Duration::from_secs(1), BACKOFF)
        .await
        .unwrap_err();
    assert!(invalid_input(&err).contains("no state"), "{err}");
    assert_eq!(sandbox.calls(), before);
}

/// The sandbox's router behind a layer that records each request's method and path, that
/// reverses the event log's order when asked, and that loses the next answer when asked (the
/// sandbox acts, the client gets a 500 instead).
struct Recorded {
    vipps: Vipps,
    seen: Arc<Mutex<Vec<String>>>,
    reverse_events: Arc<std::sync::atomic::AtomicBool>,
    lose_next_answer: Arc<std::sync::atomic::AtomicBool>,
    _server: tokio::task::JoinHandle<()>,
}

impl Recorded {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reverse_events = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lose_next_answer = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, reverse, lose) = (seen.clone(), reverse_events.clone(), lose_next_answer.clone());
        let app = Sandbox::builder().router().layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let (log, reverse, lose) = (log.clone(), reverse.clone(), lose.clone());
                async move {
                    let line = format!("{} {}", request.method(), request.uri().path());
                    log.lock().unwrap().push(line.clone());
                    let response = next.run(request).await;
                    if !line.contains("accesstoken") && lose.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    if !(line.ends_with("/events") && reverse.load(std::sync::atomic::Ordering::Relaxed)) {
                        return response;
                    }
                    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                    let mut events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                    events.reverse();
                    axum::Json(events).into_response()
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let c = vipps_sandbox::Credentials::default();
        let vipps = Vipps::builder()
            .client_id(&c.client_id)
            .client_secret(&c.client_secret)
            .subscription_key(&c.subscription_key)
            .merchant_serial_number(&c.merchant_serial_number)
            .base_url(base)
            .build()
            .unwrap();
        Recorded { vipps, seen, reverse_events, lose_next_answer, _server: server }
    }

    /// The requests since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// (authorized, captured, refunded, cancelled) of the payment.
    async fn aggregate(&self) -> (u64, u64, u64, u64) {
        let p = self.vipps.epayment().get_payment().reference(self.reference()).send().await.unwrap().into_inner();
        let a = p.aggregate;
        (a.authorized_amount.value, a.captured_amount.value, a.refunded_amount.value, a.cancelled_amount.value)
    }

    fn reference(&self) -> &str {
        "order-helpers-1"
    }
}

#[tokio::test]
async fn a_creation_whose_answer_was_lost_is_retried_into_the_same_payment() {
    let s = Recorded::start().await;
    let epayment = s.vipps.epayment();
    let payment = NewPayment::new(body(10_000)).unwrap();
    s.lose_next_answer.store(true, std::sync::atomic::Ordering::Relaxed);
    // The sandbox made the payment, but the answer the client got was a 500.
    assert_eq!(payment.create(&epayment).await.unwrap_err().status(), Some(500));
    let created = payment.create(&epayment).await.unwrap();
    assert_eq!(created.reference, *payment.reference());
    let log = vipps::epayment::events(&epayment, &created.reference).await.unwrap();
    assert_eq!(log.len(), 1, "one payment, created once: {log:?}");
    let creations = s.take().into_iter().filter(|r| r == "POST /epayment/v1/payments").count();
    assert_eq!(creations, 2, "sent twice, acted on once");
    // With a fresh key for the same reference, the API would refuse it: the key is what makes
    // the retry safe.
    let fresh = epayment.create_payment().idempotency_key(IdempotencyKey::generate()).body(payment.body().clone());
    assert_eq!(fresh.send().await.unwrap_err().status(), Some(409));
}

/// Whether any of `requests` is a modification (capture, refund or cancel).
fn modifications(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|r| r.starts_with("POST") && (r.ends_with("/capture") || r.ends_with("/refund") || r.ends_with("/cancel")))
        .collect()
}

#[tokio::test]
async fn modifications_beyond_the_aggregate_are_refused_and_never_sent() {
    let s = Recorded::start().await;
    let epayment = s.vipps.epayment();
    let reference = s.reference();
    let key = IdempotencyKey::generate;
    NewPayment::with_reference(reference, body(10_000)).unwrap().create(&epayment).await.unwrap();
    approve(&s.vipps, reference).await;

    // A zero amount (a negative one does not compile): refused without even reading the payment.
    s.take();
    for value in [0] {
        let err = vipps::epayment::capture(&epayment, reference, nok(value), &key()).await.unwrap_err();
        assert!(invalid_input(&err).contains("must be positive"), "{err}");
        let err = vipps::epayment::refund(&epayment, reference, nok(value), &key()).await.unwrap_err();
        assert!(invalid_input(&err).contains("must be positive"), "{err}");
    }
    assert_eq!(s.take(), Vec::<String>::new());

    // Another currency than the payment's.
    let err = vipps::epayment::capture(&epayment, reference, Amount { currency: Currency::Eur, value: 100 }, &key())
        .await
        .unwrap_err();
    assert!(invalid_input(&err).contains("is in EUR, but payment order-helpers-1 is in NOK"), "{err}");
    assert_eq!(s.take(), [format!("GET /epayment/v1/payments/{reference}")]);

    // Refund before anything is captured; capture more than is authorized.
    let err = vipps::epayment::refund(&epayment, reference, nok(100), &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("cannot refund 100 of payment order-helpers-1: 0 is open"), "{err}");
    let err = vipps::epayment::capture(&epayment, reference, nok(10_001), &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("cannot capture 10001 of payment order-helpers-1: 10000 is open"), "{err}");
    let seen = s.take();
    assert!(modifications(&seen).is_empty(), "{seen:?}");
    assert_eq!(s.aggregate().await, (10_000, 0, 0, 0));

    // Within the aggregate, each with its own key, it goes through.
    let capture_key = key();
    let m = vipps::epayment::capture(&epayment, reference, nok(6_000), &capture_key).await.unwrap();
    assert_eq!(m.aggregate.captured_amount.value, 6_000);
    let err = vipps::epayment::capture(&epayment, reference, nok(4_001), &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("4000 is open (authorized 10000, captured 6000, cancelled 0"), "{err}");
    vipps::epayment::refund(&epayment, reference, nok(2_000), &key()).await.unwrap();
    let err = vipps::epayment::refund(&epayment, reference, nok(4_001), &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("4000 is open (captured 6000, refunded 2000)"), "{err}");
    s.take();
    assert_eq!(s.aggregate().await, (10_000, 6_000, 2_000, 0));

    // Cancel releases the 4,000 not captured; a second cancel has nothing left to release.
    let m = vipps::epayment::cancel(&epayment, reference, &key()).await.unwrap();
    assert_eq!((m.state, m.aggregate.cancelled_amount.value), (State::Authorized, 4_000));
    s.take();
    let err = vipps::epayment::cancel(&epayment, reference, &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("nothing left to cancel"), "{err}");
    let err = vipps::epayment::capture(&epayment, reference, nok(1), &key()).await.unwrap_err();
    assert!(invalid_input(&err).contains("0 is open"), "{err}");
    let seen = s.take();
    assert!(modifications(&seen).is_empty(), "{seen:?}");

    let keys: Vec<_> = vipps::epayment::events(&epayment, reference)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name == Some(PaymentEventName::Captured))
        .map(|e| e.idempotency_key.map(String::from))
        .collect();
    assert_eq!(keys, [Some(capture_key.as_str().to_owned())], "the capture went with the caller's key");
}

#[tokio::test]
async fn a_final_payment_cannot_be_cancelled_and_nothing_is_sent() {
    let s = Recorded::start().await;
    let epayment = s.vipps.epayment();
    let created = vipps::epayment::create_payment(&epayment, body(1_000)).await.unwrap();
    // Not yet approved: cancelling is allowed and ends it.
    let m = vipps::epayment::cancel(&epayment, &created.reference, &IdempotencyKey::generate()).await.unwrap();
    assert_eq!(m.state, State::Terminated);
    s.take();
    let err = vipps::epayment::cancel(&epayment, &created.reference, &IdempotencyKey::generate()).await.unwrap_err();
    assert!(invalid_input(&err).contains("is TERMINATED and cannot be cancelled"), "{err}");
    let seen = s.take();
    assert!(modifications(&seen).is_empty(), "{seen:?}");
}

#[tokio::test]
async fn a_modification_retried_with_its_key_is_sent_again_and_changes_nothing() {
    let s = Recorded::start().await;
    let epayment = s.vipps.epayment();
    let reference = s.reference();
    NewPayment::with_reference(reference, body(10_000)).unwrap().create(&epayment).await.unwrap();
    approve(&s.vipps, reference).await;
    let key = IdempotencyKey::generate();
    let first = vipps::epayment::capture(&epayment, reference, nok(10_000), &key).await.unwrap();
    // Nothing is open any more, but this is the same capture again (its answer was lost, say):
    // the event log shows the key, so it is sent and the API answers as the first time.
    s.take();
    let again = vipps::epayment::capture(&epayment, reference, nok(10_000), &key).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(modifications(&s.take()).len(), 1);
    assert_eq!(s.aggregate().await, (10_000, 10_000, 0, 0), "captured once");
    // The same for a refund.
    let key = IdempotencyKey::generate();
    vipps::epayment::refund(&epayment, reference, nok(10_000), &key).await.unwrap();
    vipps::epayment::refund(&epayment, reference, nok(10_000), &key).await.unwrap();
    assert_eq!(s.aggregate().await, (10_000, 10_000, 10_000, 0), "refunded once");
    // Another key for the same amount is a new refund, and refused.
    let err = vipps::epayment::refund(&epayment, reference, nok(10_000), &IdempotencyKey::generate()).await.unwrap_err();
    assert!(invalid_input(&err).contains("0 is open"), "{err}");
}

#[tokio::test]
async fn the_event_log_comes_oldest_first_whatever_order_the_api_sends() {
    let s = Recorded::start().await;
    let epayment = s.vipps.epayment();
    let reference = s.reference();
    // Each step apart in time, so that the order is the timestamps' order.
    NewPayment::with_reference(reference, body(10_000)).unwrap().create(&epayment).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    approve(&s.vipps, reference).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    vipps::epayment::capture(&epayment, reference, nok(10_000), &IdempotencyKey::generate()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    vipps::epayment::refund(&epayment, reference, nok(2_500), &IdempotencyKey::generate()).await.unwrap();
    s.reverse_events.store(true, std::sync::atomic::Ordering::Relaxed);
    let raw = epayment.get_payment_event_log().reference(reference).send().await.unwrap().into_inner();
    assert_eq!(raw[0].name, Some(PaymentEventName::Refunded), "the layer reverses the log");
    let names: Vec<_> = vipps::epayment::events(&epayment, reference)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name.unwrap(), e.amount.value))
        .collect();
    assert_eq!(
        names,
        [
            (PaymentEventName::Created, 10_000),
            (PaymentEventName::Authorized, 10_000),
            (PaymentEventName::Captured, 10_000),
            (PaymentEventName::Refunded, 2_500),
        ]
    );
}
