//! The sandbox behaves like the real service where the SDK's safety depends on it, and its
//! fault injection drives the SDK's retry, token and timeout paths end to end.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use vipps_core::{Error, RetryPolicy, Timeouts};
use vipps_sandbox::Sandbox;

async fn list(vipps: &vipps::Vipps) -> Result<usize, Error> {
    Ok(vipps.recurring().list_agreements().send().await?.into_inner().len())
}

fn tokens_issued(sandbox: &Sandbox) -> usize {
    sandbox.state().tokens.lock().unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn injected_503s_are_retried_until_the_call_succeeds() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    sandbox.fail_next(2, 503);
    let before = sandbox.calls();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    // One token call, two failed attempts, one that succeeded.
    assert_eq!(sandbox.calls() - before, 4);
}

#[tokio::test(start_paused = true)]
async fn a_fault_that_outlasts_the_retry_policy_is_a_typed_api_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    sandbox.fail_next(5, 503);
    let before = sandbox.calls();
    let err = list(&vipps).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert_eq!(err.problem().and_then(|p| p.status), Some(503));
    // One token call and the policy's three attempts.
    assert_eq!(sandbox.calls() - before, 4);
    // Two injected failures are left: the next call fails twice, then succeeds.
    let before = sandbox.calls();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(sandbox.calls() - before, 3);
}

#[tokio::test(start_paused = true)]
async fn a_400_is_not_retried() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    list(&vipps).await.unwrap();
    sandbox.fail_next(2, 400);
    let before = sandbox.calls();
    assert_eq!(list(&vipps).await.unwrap_err().status(), Some(400));
    assert_eq!(sandbox.calls() - before, 1);
}

#[tokio::test(start_paused = true)]
async fn expired_tokens_are_refetched_once_and_the_call_goes_through() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::paused_client(&sandbox);
    list(&vipps).await.unwrap();
    assert_eq!(tokens_issued(&sandbox), 1);
    sandbox.expire_tokens();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(tokens_issued(&sandbox), 2, "one 401, one new token");
    // The new token is cached: no more token calls.
    list(&vipps).await.unwrap();
    assert_eq!(tokens_issued(&sandbox), 2);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_replaced_before_they_expire() {
    let sandbox = Sandbox::builder().token_lifetime(Duration::from_secs(300)).start().await.unwrap();
    let vipps = support::paused_builder(&sandbox).token_refresh_margin(Duration::from_secs(60)).build().unwrap();
    list(&vipps).await.unwrap();
    tokio::time::advance(Duration::from_secs(200)).await;
    list(&vipps).await.unwrap();
    assert_eq!(tokens_issued(&sandbox), 1, "still well within the lifetime");
    tokio::time::advance(Duration::from_secs(50)).await;
    // 250 s into a 300 s token, inside the 60 s margin: replaced before any call is refused.
    let before = sandbox.calls();
    list(&vipps).await.unwrap();
    assert_eq!(tokens_issued(&sandbox), 2);
    assert_eq!(sandbox.calls() - before, 2, "one token call and one API call, no 401");
}

/// The attempt limit holds whichever reqwest client sends the call: the one the runtime built,
/// one given to the builder, or one given to a generated client directly
/// (`Client::new_with_client`, whose client the runtime never sees).
#[tokio::test(start_paused = true)]
async fn latency_beyond_the_attempt_limit_is_a_timeout() {
    for client in ["built", "given to the builder", "given to the generated client"] {
        let sandbox = Sandbox::start().await.unwrap();
        let plain = || vipps_core::reqwest::Client::builder().pool_idle_timeout(None).build().unwrap();
        let mut builder = support::builder(&sandbox)
            .timeouts(Timeouts { connect: None, attempt: Some(Duration::from_secs(1)), call: None })
            .retry_policy(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() });
        if client == "given to the builder" {
            builder = builder.http_client(plain());
        }
        let vipps = builder.build().unwrap();
        let recurring = if client == "given to the generated client" {
            let context = vipps_core::Context::new(vipps.runtime().clone(), &vipps_recurring::API);
            vipps_recurring::Client::new_with_client(sandbox.base_url(), plain(), context)
        } else {
            vipps.recurring()
        };
        let list = || async { recurring.list_agreements().send().await.map(|r| r.into_inner().len()) };
        // Fetch the token first: the latency applies to API calls only.
        list().await.unwrap();
        sandbox.set_latency(Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let err = list().await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "client {client}: {err:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(1), "client {client}");
        sandbox.set_latency(Duration::ZERO);
        assert_eq!(list().await.unwrap(), 0);
    }
}

/// The rest of the call's time, when shorter than the attempt limit, bounds the attempt.
#[tokio::test(start_paused = true)]
async fn the_call_limit_cuts_an_attempt_short() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::builder(&sandbox)
        .timeouts(Timeouts { connect: None, attempt: Some(Duration::from_secs(10)), call: Some(Duration::from_secs(3)) })
        .retry_policy(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() })
        .build()
        .unwrap();
    list(&vipps).await.unwrap();
    sandbox.set_latency(Duration::from_secs(20));
    let started = tokio::time::Instant::now();
    let err = list(&vipps).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn wrong_credentials_are_an_authentication_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::builder(&sandbox).client_secret("not-the-secret").build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    assert!(matches!(err, Error::TokenEndpoint { status: Some(401), problem: Some(_), .. }), "{err:?}");
    assert!(err.is_authentication());
    assert!(!format!("{err} {err:?}").contains("not-the-secret"));
    let vipps = support::builder(&sandbox).subscription_key("not-the-key").build().unwrap();
    assert!(list(&vipps).await.unwrap_err().is_authentication());
}

#[tokio::test]
async fn the_miami_token_endpoint_works_through_the_facade() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::builder(&sandbox).token_endpoint(vipps_core::TokenEndpoint::Miami).build().unwrap();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(tokens_issued(&sandbox), 1);
}

#[tokio::test]
async fn the_access_token_api_answers_through_the_facade() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::client(&sandbox);
    let token = vipps.access_token().fetch_access_token().send().await.unwrap().into_inner();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, "3600");
    let miami = vipps
        .access_token()
        .fetch_token()
        .body(vipps_accesstoken::types::TokenRequest {
            grant_type: vipps_accesstoken::types::TokenRequestGrantType::ClientCredentials,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(miami.expires_in, 900);
    assert_eq!(tokens_issued(&sandbox), 2);
}

#[tokio::test]
async fn missing_merchant_serial_number_is_a_400_naming_the_header() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = sandbox.credentials();
    let vipps = vipps::Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    let err = list(&vipps).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    let problem = err.problem().unwrap();
    assert!(problem.detail.as_deref().unwrap_or_default().contains("Merchant-Serial-Number"), "{problem:?}");
    // With a merchant handle the same call goes through.
    let merchant = vipps.merchant(&c.merchant_serial_number).unwrap();
    assert_eq!(merchant.recurring().list_agreements().send().await.unwrap().into_inner().len(), 0);
}

#[tokio::test]
async fn control_endpoints_drive_faults_over_http() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::client(&sandbox);
    let http = vipps_core::reqwest::Client::new();
    let r = http
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&serde_json::json!({"failNext": {"count": 1, "status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // 500 is not retried: the call fails once, the next one succeeds.
    assert_eq!(list(&vipps).await.unwrap_err().status(), Some(500));
    assert_eq!(list(&vipps).await.unwrap(), 0);
    let bad = http
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&serde_json::json!({"failNext": {"count": 1, "status": 200}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = http.post(format!("{}/_sandbox/expire-tokens", sandbox.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(tokens_issued(&sandbox), 2);
}

/// Every current and proposal operation of the seven generated API descriptors has a route in
/// the sandbox: an authenticated request to it reaches a handler (any answer but the router's
/// "no such endpoint" 404 or a 405). The per-API tests show that the facade's calls succeed.
#[tokio::test]
async fn every_non_deprecated_operation_is_routed() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = sandbox.credentials();
    let http = vipps_core::reqwest::Client::new();
    let token = support::raw_token(&sandbox).await;
    let apis = [
        &vipps_accesstoken::API,
        &vipps_recurring::API,
        &vipps_psp::API,
        &vipps_management::API,
        &vipps_order_management::API,
        &vipps_epayment::API,
        &vipps_webhooks::API,
        &vipps_checkout::API,
    ];
    let mut checked = 0;
    let mut unrouted = Vec::new();
    for api in apis {
        for op in api.operations.iter().filter(|o| o.status != vipps_core::OperationStatus::Deprecated) {
            // Fill path parameters with plausible values.
            let mut path = String::new();
            for (i, part) in op.path.split(['{', '}']).enumerate() {
                path.push_str(match (i % 2, part) {
                    (0, literal) => literal,
                    (_, "paymentType") => "ecom",
                    (_, "scheme") => "business:NO:ORG",
                    (_, "id") if api.name == "webhooks" => "0b7e3bd8-3b5e-4b8e-9a55-8d0a4c2b6f01",
                    (_, "id") => "923456783",
                    (_, "msn") => "123456",
                    (_, _) => "unknown-1",
                });
            }
            let method = vipps_core::reqwest::Method::from_bytes(op.http_method.as_bytes()).unwrap();
            let mut request = http
                .request(method, format!("{}{path}", sandbox.base_url()))
                .bearer_auth(&token)
                .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
                .header("Merchant-Serial-Number", &c.merchant_serial_number)
                // Checkout authenticates with these instead of the token.
                .header("client_id", &c.client_id)
                .header("client_secret", &c.client_secret)
                .header("Psp-Id", "sandbox-psp")
                .header("Idempotency-Key", format!("routed-{checked}"));
            if matches!(op.http_method, "POST" | "PUT" | "PATCH") {
                request = request.header("Content-Type", "application/json").body("{}");
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            if api.name != "accesstoken" {
                // The token endpoints want client credentials instead, which the Access Token
                // tests send; every other call must get past the credential check.
                assert_ne!(status, 401, "{} {}: the credentials must be accepted: {body}", op.http_method, op.path);
            }
            if status == 405 || (status == 404 && body.contains("no such endpoint in the sandbox")) {
                unrouted.push(format!("{} {} {} -> {status}", api.name, op.http_method, op.path));
            }
            checked += 1;
        }
    }
    assert!(unrouted.is_empty(), "not served: {unrouted:#?}");
    assert_eq!(checked, 2 + 13 + 4 + 15 + 8 + 7 + 3 + 2, "the non-deprecated operations of the eight specs");
}
