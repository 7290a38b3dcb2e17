//! No secret, token or subscription key in `Debug`, `Display` or TRACE output. Its own test
//! binary, because it installs a global tracing subscriber.

mod support;

use serde_json::json;
use support::*;
use vipps::Error;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn secrets_appear_in_no_debug_output_or_trace() {
    let buffer = TraceBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).finish();
    // The only test in this process, with a global subscriber: a thread-local one raced with
    // tests running in parallel on tracing's callsite cache and sometimes saw nothing.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let server = MockServer::start().await;
    mount_token(&server, "token-must-not-leak").await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let vipps = client(&server);
    let recurring = vipps.recurring();
    recurring.list_agreements().send().await.unwrap();
    let err: Error = recurring.fetch_agreement().agreement_id("agr_x").send().await.unwrap_err();
    // A method renamed by the manifest is traced under its published operationId.
    let body = vipps::recurring::types::ForceAcceptAgreementV3 { phone_number: "4791234567".into() };
    recurring.force_accept_agreement().agreement_id("agr_x").idempotency_key("k-1").body(body).send().await.unwrap_err();

    let traced = buffer.text();
    assert!(traced.contains("vipps.call") && traced.contains("operation=\"ListAgreementsV3\""), "the trace was captured: {traced}");
    // The span's fields, recorded once the call is over, show on its closing event.
    let finished = traced.lines().find(|l| l.contains("call finished") && l.contains("ListAgreementsV3")).expect("a closing event");
    for field in ["api=\"recurring\"", "method=GET", "msn=\"123456\"", "attempt=1", "status=200", "latency_ms="] {
        assert!(finished.contains(field), "{field} missing from {finished}");
    }
    assert!(traced.contains("operation=\"acceptUsingPATCHV3\"") && !traced.contains("force_accept_agreement"), "{traced}");
    let shown = format!("{vipps:?} {recurring:?} {err:?} {err} {:?}", vipps.runtime().access_token().await.unwrap());
    for secret in [CLIENT_SECRET, SUBSCRIPTION_KEY, "token-must-not-leak"] {
        assert!(!traced.contains(secret), "trace leaks {secret}");
        assert!(!shown.contains(secret), "Debug/Display leaks {secret}: {shown}");
    }
}

