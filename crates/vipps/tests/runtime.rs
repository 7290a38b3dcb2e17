//! The runtime's promises, checked on the server side of a loopback mock server.

mod support;

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use support::*;
use vipps::recurring::types::AgreementStatus;
use vipps::{Environment, Error};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn mount_agreements(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_a_cold_cache_fetch_one_token() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_agreements(&server).await;
    let vipps = client(&server);
    let recurring = vipps.recurring();
    let results = join_all((0..1000).map(|_| recurring.list_agreements().send())).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 1);
    assert_eq!(requests_to(&server, "/recurring/v3/agreements").await.len(), 1000);
    assert_eq!(vipps.runtime().token_cache().fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn at_expiry_a_thousand_calls_fetch_one_new_token() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_agreements(&server).await;
    let vipps = client(&server);
    let recurring = vipps.recurring();
    recurring.list_agreements().send().await.unwrap();
    tokio::time::advance(Duration::from_secs(3600 - 59)).await; // inside the 60 s refresh margin
    let results = join_all((0..1000).map(|_| recurring.list_agreements().send())).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
}

#[tokio::test]
async fn fifty_merchant_handles_share_one_token_and_send_their_own_msn() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_agreements(&server).await;
    let vipps = client(&server);
    let merchants: Vec<_> = (0..50).map(|i| vipps.merchant(format!("{}", 200000 + i)).unwrap()).collect();
    join_all(merchants.iter().map(|m| async move { m.recurring().list_agreements().send().await.unwrap() })).await;
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 1);
    let mut msns: Vec<String> = requests_to(&server, "/recurring/v3/agreements")
        .await
        .iter()
        .map(|r| r.headers.get("merchant-serial-number").unwrap().to_str().unwrap().to_owned())
        .collect();
    msns.sort();
    assert_eq!(msns, (0..50).map(|i| format!("{}", 200000 + i)).collect::<Vec<_>>());
    assert!(vipps.merchant("12a4").is_err());
}

#[tokio::test]
async fn every_request_carries_the_managed_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/accesstoken/get"))
        .and(header("client_id", CLIENT_ID))
        .and(header("client_secret", CLIENT_SECRET))
        .and(header("ocp-apim-subscription-key", SUBSCRIPTION_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1", 3600)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .and(header("authorization", "Bearer tok-1"))
        .and(header("ocp-apim-subscription-key", SUBSCRIPTION_KEY))
        .and(header("merchant-serial-number", "123456"))
        .and(header("vipps-system-name", "acme-shop"))
        .and(header("vipps-system-version", "1.2.3"))
        .and(header("vipps-system-plugin-name", "acme-plugin"))
        .and(header("vipps-system-plugin-version", "4.5.6"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).recurring().list_agreements().send().await.unwrap();
    let api = &requests_to(&server, "/recurring/v3/agreements").await[0];
    assert!(api.headers.get("api-version").is_none());
}

#[tokio::test]
async fn psp_calls_send_the_psp_id() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("GET"))
        .and(path("/psp/v3/psppayments/tx-1/details"))
        .and(header("psp-id", "psp-42"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"title": "seen"})))
        .expect(1)
        .mount(&server)
        .await;
    let vipps = builder(&server).psp_id("psp-42").build().unwrap();
    let err = vipps.psp().get_payment_details().psp_transaction_id("tx-1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn a_401_refetches_the_token_once_and_retries_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1", 3600)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_token(&server, "tok-2").await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"statusCode": 401, "message": "token expired"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .and(header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    client(&server).recurring().list_agreements().send().await.unwrap();
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
    assert_eq!(requests_to(&server, "/recurring/v3/agreements").await.len(), 2);
}

#[tokio::test]
async fn a_second_401_is_an_authentication_error() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Access denied"))
        .mount(&server)
        .await;
    let err: Error = client(&server).recurring().list_agreements().send().await.unwrap_err();
    match &err {
        Error::Authentication { status: Some(401), message, .. } => assert!(message.contains("Access denied"), "{message}"),
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
    assert_eq!(requests_to(&server, "/recurring/v3/agreements").await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_its_retry_after() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_agreements(&server).await;
    let vipps = client(&server);
    vipps.runtime().access_token().await.unwrap();
    let started = tokio::time::Instant::now();
    vipps.recurring().list_agreements().send().await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100), "waited {waited:?}");
    let sent = requests_to(&server, "/recurring/v3/agreements").await;
    assert_eq!(sent.len(), 2);
    // The retry is a copy of the first attempt (a request without a body is copied field by field).
    assert_eq!((&sent[1].method, &sent[1].url, &sent[1].headers), (&sent[0].method, &sent[0].url, &sent[0].headers));
}

#[tokio::test(start_paused = true)]
async fn two_503s_then_success_reuse_one_idempotency_key() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    let charges = "/recurring/v3/agreements/agr_1/charges";
    Mock::given(method("POST"))
        .and(path(charges))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(charges))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("recurring/CreateChargeV3.response.json")))
        .mount(&server)
        .await;
    let body: vipps::recurring::types::CreateChargeV3 =
        serde_json::from_value(fixture("recurring/CreateChargeV3.request.json")).unwrap();
    client(&server).recurring().create_charge().agreement_id("agr_1").body(body).send().await.unwrap();
    let sent = requests_to(&server, charges).await;
    assert_eq!(sent.len(), 3);
    let keys: Vec<_> = sent.iter().map(|r| r.headers.get("idempotency-key").unwrap().to_str().unwrap().to_owned()).collect();
    assert!(keys.iter().all(|k| k == &keys[0]) && keys[0].len() <= 40, "{keys:?}");
    // Each retry is a copy of the first attempt: the same body and the same headers.
    let first: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(first, fixture("recurring/CreateChargeV3.request.json"));
    for retry in &sent[1..] {
        assert_eq!(retry.body, sent[0].body);
        assert_eq!(retry.headers, sent[0].headers);
    }
}

#[tokio::test(start_paused = true)]
async fn a_post_without_an_idempotency_key_is_sent_once() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("POST"))
        .and(path("/psp/v3/psppayments/init"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&server)
        .await;
    let body: vipps::psp::types::InitiatePaymentRequest =
        serde_json::from_value(fixture("psp/initiatePaymentV3UsingPOST.request.json")).unwrap();
    let err: Error = client(&server).psp().initiate_payment().body(body).send().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.problem().unwrap().detail.as_deref(), Some("busy"), "a text body is kept");
    assert_eq!(requests_to(&server, "/psp/v3/psppayments/init").await.len(), 1);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_before_anything_is_sent() {
    let server = MockServer::start().await;
    assert!(matches!(builder(&server).client_id("").build(), Err(Error::Config { field: "client_id", .. })));
    assert!(matches!(builder(&server).system("x".repeat(31), "1").build(), Err(Error::Config { field: "Vipps-System-Name", .. })));
    assert!(matches!(builder(&server).base_url("not a url").build(), Err(Error::Config { field: "base_url", .. })));
    assert!(matches!(builder(&server).base_url("ftp://host").build(), Err(Error::Config { field: "base_url", .. })));
    let body: vipps::recurring::types::CreateChargeV3 =
        serde_json::from_value(fixture("recurring/CreateChargeV3.request.json")).unwrap();
    let err: Error = client(&server)
        .recurring()
        .create_charge()
        .agreement_id("agr_1")
        .idempotency_key("order/1")
        .body(body)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing may be sent, not even a token request");
}

#[tokio::test]
async fn an_unknown_enum_value_is_read_but_never_sent() {
    let server = MockServer::start().await;
    use vipps::recurring::types::{AgreementStatus, CreateChargeV3, TransactionType};
    let mut body = fixture("recurring/CreateChargeV3.request.json");
    body["transactionType"] = json!("CAPTURE_LATER");
    let body: CreateChargeV3 = serde_json::from_value(body).unwrap();
    assert_eq!(body.transaction_type, TransactionType::Unknown("CAPTURE_LATER".into()));
    let err = client(&server).recurring().create_charge().agreement_id("agr_1").body(body).send().await.unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { message } if message.contains("CAPTURE_LATER")), "{err:?}");
    let status = AgreementStatus::Unknown("PAUSED".into());
    let err = client(&server).recurring().list_agreements().status(status).send().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing may be sent, not even a token request");
}

#[tokio::test]
async fn management_is_refused_in_the_test_environment() {
    let server = MockServer::start().await;
    let test = builder(&server).environment(Environment::Test);
    // base_url wins over environment in the builder; build one without it.
    let test_env = vipps::Vipps::builder()
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .subscription_key(SUBSCRIPTION_KEY)
        .environment(Environment::Test)
        .build()
        .unwrap();
    let err = test_env.management().unwrap_err();
    assert!(err.to_string().contains("only in production"), "{err}");
    assert!(test_env.merchant("123456").unwrap().management().is_err());
    assert!(test.build().unwrap().management().is_ok(), "a custom base URL (sandbox, mock) is allowed");
}

#[tokio::test]
async fn from_env_reads_vipps_variables() {
    let vars = |k: &str| match k {
        "VIPPS_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
        "VIPPS_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
        "VIPPS_SUBSCRIPTION_KEY" => Some(SUBSCRIPTION_KEY.to_owned()),
        "VIPPS_MERCHANT_SERIAL_NUMBER" => Some("123456".to_owned()),
        "VIPPS_ENVIRONMENT" => Some("production".to_owned()),
        _ => None,
    };
    let vipps = vipps::VippsBuilder::from_lookup(vars).unwrap().build().unwrap();
    assert_eq!(vipps.runtime().environment(), &Environment::Production);
    assert_eq!(vipps.runtime().merchant_serial_number().unwrap().as_str(), "123456");
    let missing = vipps::VippsBuilder::from_lookup(|k| (k != "VIPPS_CLIENT_SECRET").then(|| vars(k)).flatten()).unwrap().build();
    assert!(matches!(missing, Err(Error::Config { field: "client_secret", .. })));
    assert!(vipps::VippsBuilder::from_lookup(|k| if k == "VIPPS_ENVIRONMENT" { Some("staging".into()) } else { vars(k) }).is_err());
}

#[tokio::test(start_paused = true)]
async fn agreements_stream_over_pages_and_charges_follow_the_continuation_token() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    for (page, items) in [("1", vec![agreement("agr_1", "ACTIVE"), agreement("agr_2", "ACTIVE")]), ("2", vec![agreement("agr_3", "ACTIVE")])] {
        Mock::given(method("GET"))
            .and(path("/recurring/v3/agreements"))
            .and(wiremock::matchers::query_param("pageNumber", page))
            .and(wiremock::matchers::query_param("pageSize", "2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(items))
            .mount(&server)
            .await;
    }
    let vipps = client(&server);
    let recurring = vipps.recurring();
    let all = vipps::recurring::collect(vipps::recurring::agreements(&recurring, AgreementStatus::Active, 2)).await.unwrap();
    assert_eq!(all.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), ["agr_1", "agr_2", "agr_3"]);

    let token = "5f3e6a2c-8d1b-4c7a-9e0f-1a2b3c4d5e6f";
    let charge = fixture("recurring/FetchChargeV3.response.json");
    let charges = "/recurring/v3/agreements/agr_1/charges";
    Mock::given(method("GET"))
        .and(path(charges))
        .and(header("continuation-token", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([charge.clone()])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(charges))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([charge.clone(), charge])).insert_header("Continuation-Token", token))
        .mount(&server)
        .await;
    let all = vipps::recurring::collect(vipps::recurring::charges(&recurring, "agr_1", None)).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(requests_to(&server, charges).await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_an_agreement_status_polls_until_it_or_the_deadline() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    let p = "/recurring/v3/agreements/agr_1";
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_json(agreement("agr_1", "PENDING")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path(p)).respond_with(ResponseTemplate::new(200).set_body_json(agreement("agr_1", "ACTIVE"))).mount(&server).await;
    let vipps = client(&server);
    let recurring = vipps.recurring();
    let started = tokio::time::Instant::now();
    let a = vipps::recurring::wait_for_agreement_status(&recurring, "agr_1", AgreementStatus::Active, Duration::from_secs(60), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(a.status, Some(AgreementStatus::Active));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    let err = vipps::recurring::wait_for_agreement_status(&recurring, "agr_1", AgreementStatus::Stopped, Duration::from_secs(12), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}
