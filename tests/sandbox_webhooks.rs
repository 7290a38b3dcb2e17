//! The Webhooks API v1 through the facade (`vipps.webhooks()`) against the sandbox: register
//! (a secret per registration), list and delete, per merchant, and bad registrations refused
//! with a 400 naming the field; and the sandbox's signed deliveries of ePayment events to a
//! receiver on loopback that checks them with `vipps_core::webhooks::Verifier`, for ePayment
//! and for Recurring events (read into the typed `vipps_core::webhooks::Event`).

#[path = "support/mod.rs"]
mod support;

use vipps::Vipps;
use vipps_webhooks::types::{RegisterRequest, RegisterResponse};

fn request(url: &str, events: &[&str]) -> RegisterRequest {
    RegisterRequest { url: url.to_owned(), events: events.iter().map(|e| e.to_string()).collect() }
}

async fn register(vipps: &Vipps, url: &str, events: &[&str]) -> Result<RegisterResponse, vipps_core::Error> {
    Ok(vipps.webhooks().register_webhook().body(request(url, events)).send().await?.into_inner())
}

#[tokio::test]
async fn webhooks_are_registered_listed_and_deleted() {
    let (_sandbox, vipps) = support::start().await;
    assert!(vipps.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks.is_empty());

    let paid = register(
        &vipps,
        "https://shop.example.com/hooks/paid",
        &["epayments.payment.authorized.v1", "epayments.payment.captured.v1"],
    )
    .await
    .unwrap();
    let local = register(&vipps, "http://127.0.0.1:9/hooks", &["epayments.payment.refunded.v1"]).await.unwrap();
    assert_ne!(paid.id, local.id);
    assert_ne!(paid.secret, local.secret, "each registration has its own secret");
    assert!(paid.secret.len() >= 32, "a secret worth the name: {}", paid.secret);

    let listed = vipps.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, paid.id);
    assert_eq!(listed[0].url, "https://shop.example.com/hooks/paid");
    assert_eq!(listed[0].events, ["epayments.payment.authorized.v1", "epayments.payment.captured.v1"]);

    let deleted = vipps.webhooks().delete_webhook().id(paid.id).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let listed = vipps.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [local.id]);
    let again = vipps.webhooks().delete_webhook().id(paid.id).send().await.unwrap_err();
    assert_eq!(again.status(), Some(404));
}

#[tokio::test]
async fn the_secret_of_a_registration_is_not_in_its_debug_output() {
    let (_sandbox, vipps) = support::start().await;
    let registered = register(&vipps, "https://shop.example.com/hooks", &["epayments.payment.created.v1"]).await.unwrap();
    let shown = format!("{registered:?}");
    assert!(!shown.contains(&registered.secret), "{shown}");
    assert!(shown.contains("[REDACTED]") && shown.contains(&registered.id.to_string()), "{shown}");
    let builder = vipps_webhooks::types::builder::RegisterResponse::from(registered.clone());
    assert!(!format!("{builder:?}").contains(&registered.secret));
}

#[tokio::test]
async fn registrations_belong_to_their_merchant() {
    let (_sandbox, vipps) = support::start().await;
    let mine = register(&vipps, "https://shop.example.com/hooks", &["epayments.payment.created.v1"]).await.unwrap();
    let other = vipps.merchant("654321").unwrap();
    assert!(other.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks.is_empty());
    let err = other.webhooks().delete_webhook().id(mine.id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let theirs = other
        .webhooks()
        .register_webhook()
        .body(request("https://other.example.com/hooks", &["epayments.payment.created.v1"]))
        .send()
        .await
        .unwrap()
        .into_inner();
    let listed = other.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [theirs.id]);
    let listed = vipps.webhooks().list_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [mine.id]);
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_add_nothing() {
    let (sandbox, vipps) = support::start().await;
    let cases: [(&str, &[&str], &str); 3] = [
        ("not a url", &["epayments.payment.created.v1"], "url"),
        ("https://shop.example.com/hooks", &[], "events"),
        ("https://shop.example.com/hooks", &["epayments.payment.created.v1", "two words"], "events[1]"),
    ];
    for (url, events, field) in cases {
        let err = register(&vipps, url, events).await.unwrap_err();
        let named = err
            .problem()
            .and_then(|p| p.extra_details.as_ref())
            .and_then(|d| d[0]["name"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert_eq!((err.status(), named.as_str()), (Some(400), field), "{url} {events:?}: {err}");
    }
    assert!(sandbox.state().webhooks.lock().unwrap().registrations().is_empty());
    // A body that is not a registration at all.
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/webhooks/v1/webhooks")
            .await
            .json(&serde_json::json!({"url": "https://x.example.com"})),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "events"), "{answer}");
    // And an id that is not a UUID.
    let (status, answer) =
        support::raw_send(support::raw_request(&sandbox, "DELETE", "/webhooks/v1/webhooks/not-a-uuid").await).await;
    assert_eq!(status, 400, "{answer}");
}

/// What the loopback receiver saw: verified event names, and deliveries that failed the check.
#[derive(Default)]
struct Received {
    secret: Option<String>,
    requests: usize,
    verified: Vec<String>,
    /// The verified events, read into the typed events.
    events: Vec<vipps_core::webhooks::Event>,
    rejected: Vec<String>,
}

type Shared = std::sync::Arc<std::sync::Mutex<Received>>;

/// A receiver on 127.0.0.1 that answers its first request with a 500 and verifies every one.
async fn receiver(seen: Shared, notify: tokio::sync::mpsc::UnboundedSender<()>) -> String {
    let app = axum::Router::new().route(
        "/hooks/vipps",
        axum::routing::post(move |request: axum::extract::Request| {
            let (seen, notify) = (seen.clone(), notify.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let request = http::Request::from_parts(parts, body);
                let mut seen = seen.lock().unwrap();
                seen.requests += 1;
                let verifier = vipps_core::webhooks::Verifier::new(seen.secret.clone().expect("registered"));
                match verifier.verify_http_event(&request) {
                    Ok(event) => {
                        let name = event.name().expect("a named event").as_str().to_owned();
                        if seen.requests == 1 {
                            // Fails the first delivery after checking it: the sandbox must retry.
                            return http::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        seen.verified.push(name);
                        seen.events.push(event);
                    }
                    Err(e) => seen.rejected.push(e.to_string()),
                }
                let _ = notify.send(());
                http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/vipps", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_sandbox_delivers_each_epayment_event_once_signed_and_retries_a_failed_delivery() {
    let sandbox = vipps_sandbox::Sandbox::builder()
        .webhook_retry_delay(std::time::Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let vipps = support::client(&sandbox);
    let seen = Shared::default();
    let (notify, mut delivered) = tokio::sync::mpsc::unbounded_channel();
    let url = receiver(seen.clone(), notify).await;
    let events = ["epayments.payment.authorized.v1", "epayments.payment.captured.v1"];
    let registered = register(&vipps, &url, &events).await.unwrap();
    seen.lock().unwrap().secret = Some(registered.secret);
    // Another merchant's registration for the same events gets nothing of this merchant's.
    let other = vipps.merchant("654321").unwrap();
    let elsewhere = "http://127.0.0.1:9/not-listening";
    other.webhooks().register_webhook().body(request(elsewhere, &events)).send().await.unwrap();

    let body: vipps_epayment::types::CreatePaymentRequest = serde_json::from_value(serde_json::json!({
        "amount": {"currency": "NOK", "value": 1500},
        "paymentMethod": {"type": "WALLET"},
        "reference": "order-hook-1",
        "returnUrl": "https://shop.example.com/return",
        "userFlow": "WEB_REDIRECT"
    }))
    .unwrap();
    vipps.epayment().create_payment().body(body).send().await.unwrap();
    vipps
        .epayment()
        .force_approve()
        .reference("order-hook-1")
        .body(vipps_epayment::types::ForceApprove::default())
        .send()
        .await
        .unwrap();
    let capture = vipps_epayment::types::CaptureModificationRequest {
        modification_amount: vipps_epayment::types::Amount {
            currency: vipps_epayment::types::Currency::Nok,
            value: 1500,
        },
    };
    vipps.epayment().capture_payment().reference("order-hook-1").body(capture).send().await.unwrap();

    // Two verified deliveries (a deadline, not a sleep: the test ends as soon as they came).
    for _ in 0..2 {
        tokio::time::timeout(std::time::Duration::from_secs(20), delivered.recv()).await.expect("a delivery").unwrap();
    }
    let attempts = || sandbox.state().delivery_log.lock().unwrap().clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while attempts().len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap();
    assert!(seen.rejected.is_empty(), "every delivery verifies: {:?}", seen.rejected);
    let mut verified = seen.verified.clone();
    verified.sort();
    assert_eq!(verified, events, "exactly one verified delivery per event, CREATED not subscribed");
    assert_eq!(seen.requests, 3, "two events, one of them tried twice");
    let attempts = attempts();
    assert!(attempts.iter().all(|a| a.url == url), "nothing for the other merchant: {attempts:?}");
    assert_eq!(attempts.iter().filter(|a| a.status == Some(500)).count(), 1, "{attempts:?}");
    for event in events {
        let ok = attempts.iter().filter(|a| a.event == event && a.status == Some(200)).count();
        assert_eq!(ok, 1, "{event}: {attempts:?}");
    }
}

/// A request body built from JSON, read into the generated type.
fn body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid body")
}

#[tokio::test]
async fn the_sandbox_delivers_each_recurring_event_once_signed_and_retries_a_failed_delivery() {
    use vipps_core::webhooks::Event;
    use vipps_recurring::types::{
        CaptureRequestV3, CreateChargeAsyncV3, CreateChargeV3, DraftAgreementV3, RefundRequest,
    };
    let sandbox = vipps_sandbox::Sandbox::builder()
        .webhook_retry_delay(std::time::Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let vipps = support::client(&sandbox);
    let seen = Shared::default();
    let (notify, mut delivered) = tokio::sync::mpsc::unbounded_channel();
    let url = receiver(seen.clone(), notify).await;
    let events = [
        "recurring.agreement-activated.v1",
        "recurring.agreement-rejected.v1",
        "recurring.agreement-stopped.v1",
        "recurring.agreement-expired.v1",
        "recurring.charge-reserved.v1",
        "recurring.charge-captured.v1",
        "recurring.charge-canceled.v1",
        "recurring.charge-refunded.v1",
        "recurring.charge-failed.v1",
        "recurring.charge-creation-failed.v1",
    ];
    let registered = register(&vipps, &url, &events).await.unwrap();
    seen.lock().unwrap().secret = Some(registered.secret);
    let draft = |initial: bool| {
        let mut value = serde_json::json!({
            "pricing": {"type": "LEGACY", "amount": 29900, "currency": "NOK"},
            "interval": {"unit": "MONTH", "count": 1},
            "merchantRedirectUrl": "https://example.com/redirect",
            "merchantAgreementUrl": "https://example.com/agreement",
            "productName": "News",
            "externalId": "customer-17"
        });
        if initial {
            value["initialCharge"] =
                serde_json::json!({"amount": 4900, "description": "Start", "transactionType": "RESERVE_CAPTURE"});
        }
        let vipps = vipps.clone();
        async move {
            let draft: DraftAgreementV3 = body(value);
            let answer = vipps.recurring().draft_agreement().body(draft).send().await.unwrap();
            let answer = answer.into_inner();
            (answer.agreement_id, answer.charge_id.map(|c| c.to_string()), answer.vipps_confirmation_url.unwrap())
        }
    };
    let accept = |id: String, phone: &'static str| {
        let vipps = vipps.clone();
        async move {
            let body = vipps_recurring::types::ForceAcceptAgreementV3 { phone_number: phone.into() };
            vipps.recurring().force_accept_agreement().agreement_id(id).body(body).send().await.unwrap();
        }
    };

    // A: accepted (activated, the initial charge reserved), part captured, part refunded, stopped
    // (stopped, and the rest of the reservation released).
    let (a, initial, _) = draft(true).await;
    let initial = initial.unwrap();
    accept(a.clone(), "4791234567").await;
    let r = vipps.recurring();
    let capture: CaptureRequestV3 = body(serde_json::json!({"amount": 2000, "description": "first part"}));
    r.capture_charge().agreement_id(&a).charge_id(&initial).body(capture).send().await.unwrap();
    let refund: RefundRequest = body(serde_json::json!({"amount": 1000, "description": "goodwill"}));
    r.refund_charge().agreement_id(&a).charge_id(&initial).body(refund).send().await.unwrap();
    let stop: vipps_recurring::types::PatchAgreementV3 = body(serde_json::json!({"status": "STOPPED"}));
    r.update_agreement().agreement_id(&a).body(stop).send().await.unwrap();
    // B: rejected on its landing page.
    let (b, _, confirmation) = draft(false).await;
    let (page, token) = confirmation.split_once("?token=").unwrap();
    let answer = vipps_core::reqwest::Client::builder()
        .redirect(vipps_core::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(page)
        .form(&[("token", token), ("decision", "reject")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    // C: left pending until it expires.
    let (c, _, _) = draft(false).await;
    // D: accepted by the customer whose payments fail; its charge fails on its due date.
    let (d, _, _) = draft(false).await;
    accept(d.clone(), vipps_sandbox::recurring::FAILING_PHONE_NUMBER).await;
    let due = (sandbox.state().today() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let charge: CreateChargeV3 = body(serde_json::json!({
        "amount": 29900, "description": "Month 1", "due": due, "retryDays": 0,
        "transactionType": "DIRECT_CAPTURE", "orderId": "failing-1"
    }));
    r.create_charge().agreement_id(&d).body(charge).send().await.unwrap();
    sandbox.advance_clock(std::time::Duration::from_secs(2 * 24 * 60 * 60)).unwrap();
    r.fetch_agreement().agreement_id(&c).send().await.unwrap();
    let failed = r.fetch_charge().agreement_id(&d).charge_id("failing-1").send().await.unwrap().into_inner();
    assert_eq!(failed.status, vipps_recurring::types::ChargeStatus::Failed);
    // E: a create-multiple charge for the stopped agreement is not created.
    let due = (sandbox.state().today() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string();
    let batch: Vec<CreateChargeAsyncV3> = body(serde_json::json!([{
        "agreementId": a, "amount": 29900, "description": "Month 2", "due": due, "retryDays": 2,
        "transactionType": "DIRECT_CAPTURE", "orderId": "batch-1"
    }]));
    let answer = r.create_charges().body(batch).send().await.unwrap().into_inner();
    assert_eq!(answer.invalid_charges.len(), 1);

    // activated x2, reserved, captured, refunded, stopped, canceled, rejected, expired, failed,
    // creation-failed: eleven, each verified once.
    for _ in 0..11 {
        tokio::time::timeout(std::time::Duration::from_secs(20), delivered.recv()).await.expect("a delivery").unwrap();
    }
    let attempts = || sandbox.state().delivery_log.lock().unwrap().clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while attempts().len() < 12 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Nothing more comes (a duplicate would show up here).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap();
    assert!(seen.rejected.is_empty(), "every delivery verifies: {:?}", seen.rejected);
    let mut verified = seen.verified.clone();
    verified.sort();
    let mut expected: Vec<&str> = events.to_vec();
    expected.push("recurring.agreement-activated.v1");
    expected.sort();
    assert_eq!(verified, expected, "exactly one verified delivery per event");
    assert_eq!(seen.requests, 12, "eleven events, the first tried twice");
    let attempts = attempts();
    assert_eq!(attempts.len(), 12, "{attempts:?}");
    assert_eq!(attempts.iter().filter(|a| a.status == Some(500)).count(), 1, "{attempts:?}");

    let agreement = |name: &str, id: &str| {
        seen.events.iter().find_map(|e| match e {
            Event::Agreement(e) if e.event_type.as_str() == name && e.agreement_id == id => Some(e.clone()),
            _ => None,
        })
    };
    let charge = |name: &str| {
        seen.events.iter().find_map(|e| match e {
            Event::Charge(e) if e.event_type.as_str() == name => Some(e.clone()),
            _ => None,
        })
    };
    let activated = agreement("recurring.agreement-activated.v1", &a).expect("A activated");
    assert_eq!(activated.msn.as_deref(), Some("123456"));
    assert_eq!(activated.agreement_external_id.as_deref(), Some("customer-17"));
    assert_eq!(activated.actor.as_deref(), Some("USER"));
    assert!(activated.agreement_uuid.is_some());
    assert!(agreement("recurring.agreement-activated.v1", &d).is_some(), "D activated");
    assert_eq!(agreement("recurring.agreement-stopped.v1", &a).expect("A stopped").actor.as_deref(), Some("MERCHANT"));
    assert_eq!(agreement("recurring.agreement-rejected.v1", &b).expect("B rejected").actor.as_deref(), Some("USER"));
    assert!(agreement("recurring.agreement-expired.v1", &c).is_some(), "C expired");

    let reserved = charge("recurring.charge-reserved.v1").unwrap();
    assert_eq!((reserved.agreement_id.as_str(), reserved.charge_id.as_str()), (a.as_str(), initial.as_str()));
    let what = (reserved.amount, reserved.currency.as_deref(), reserved.charge_type.as_deref());
    assert_eq!(what, (Some(4900), Some("NOK"), Some("INITIAL")));
    assert_eq!(charge("recurring.charge-captured.v1").unwrap().amount_captured, Some(2000));
    assert_eq!(charge("recurring.charge-refunded.v1").unwrap().amount_refunded, Some(1000));
    let canceled = charge("recurring.charge-canceled.v1").unwrap();
    assert_eq!((canceled.charge_id.as_str(), canceled.amount_canceled), (initial.as_str(), Some(2900)));
    let failed = charge("recurring.charge-failed.v1").unwrap();
    let what = (failed.charge_id.as_str(), failed.failure_reason.as_deref());
    assert_eq!(what, ("failing-1", Some("user_action_required")));
    let not_created = charge("recurring.charge-creation-failed.v1").unwrap();
    assert_eq!((not_created.agreement_id.as_str(), not_created.charge_id.as_str()), (a.as_str(), "batch-1"));
    assert!(not_created.failure_reason.as_deref().is_some_and(|r| r.contains("STOPPED")), "{not_created:?}");
}
