//! Shared set-up for the sandbox tests: a sandbox on loopback and a facade client for it.
#![allow(dead_code)]

use std::time::Duration;

use vipps::Vipps;
use vipps_core::{RetryPolicy, Timeouts};
use vipps_sandbox::Sandbox;

/// A facade client for `sandbox`, with its credentials and merchant serial number.
pub fn client(sandbox: &Sandbox) -> Vipps {
    builder(sandbox).build().expect("a valid client")
}

/// A builder pre-filled for `sandbox`, to change before building.
pub fn builder(sandbox: &Sandbox) -> vipps::VippsBuilder {
    let c = sandbox.credentials();
    Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .merchant_serial_number(&c.merchant_serial_number)
        .system("sandbox-tests", "1")
        .base_url(sandbox.base_url())
}

/// A client for tests on paused tokio time: no wall-clock limits, no idle-pool timer, fast
/// retries (see crates/vipps/tests/support.rs for why).
pub fn paused_client(sandbox: &Sandbox) -> Vipps {
    paused_builder(sandbox).build().expect("a valid client")
}

/// The builder behind [`paused_client`].
pub fn paused_builder(sandbox: &Sandbox) -> vipps::VippsBuilder {
    let http = vipps_core::reqwest::Client::builder().pool_idle_timeout(None).build().expect("a client");
    builder(sandbox)
        .timeouts(Timeouts { connect: None, attempt: None, call: None })
        .retry_policy(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            ..RetryPolicy::default()
        })
        .http_client(http)
}

/// A sandbox with default settings and a client for it.
pub async fn start() -> (Sandbox, Vipps) {
    let sandbox = Sandbox::start().await.expect("the sandbox starts");
    let vipps = client(&sandbox);
    (sandbox, vipps)
}

/// A token from the sandbox's `/accesstoken/get`, for raw requests that bypass the SDK (to
/// send bodies the generated types would refuse client-side).
pub async fn raw_token(sandbox: &Sandbox) -> String {
    let c = sandbox.credentials();
    let answer: serde_json::Value = vipps_core::reqwest::Client::new()
        .post(format!("{}/accesstoken/get", sandbox.base_url()))
        .header("client_id", &c.client_id)
        .header("client_secret", &c.client_secret)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .send()
        .await
        .expect("the token endpoint answers")
        .json()
        .await
        .expect("a JSON token answer");
    answer["access_token"].as_str().expect("an access_token").to_owned()
}

/// A raw request to `path` carrying a sandbox token, the subscription key and the merchant
/// serial number, for bodies the generated types would refuse to build.
pub async fn raw_request(sandbox: &Sandbox, method: &str, path: &str) -> vipps_core::reqwest::RequestBuilder {
    let c = sandbox.credentials();
    let token = raw_token(sandbox).await;
    vipps_core::reqwest::Client::new()
        .request(method.parse().expect("an HTTP method"), format!("{}{path}", sandbox.base_url()))
        .bearer_auth(token)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .header("Merchant-Serial-Number", &c.merchant_serial_number)
}

/// Sends a raw request: the status, and the JSON answer (the text as a JSON string when the
/// answer is not JSON).
pub async fn raw_send(request: vipps_core::reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a readable body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// The field a problem answer names first in `extraDetails` (empty when none).
pub fn raw_field(answer: &serde_json::Value) -> &str {
    answer["extraDetails"][0]["name"].as_str().unwrap_or_default()
}
