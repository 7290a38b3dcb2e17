//! Shared set-up for the tests against a loopback mock server.

#![allow(dead_code)]

use serde_json::{json, Value};
use vipps::{Timeouts, Vipps};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CLIENT_ID: &str = "client-id-4f1c";
pub const CLIENT_SECRET: &str = "client-secret-must-not-leak";
pub const SUBSCRIPTION_KEY: &str = "subscription-key-must-not-leak";

/// Where the tracing tests' subscribers write: a shared, growing buffer.
#[derive(Clone, Default)]
pub struct TraceBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl TraceBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for TraceBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn token_body(token: &str, expires_in: u64) -> Value {
    json!({
        "token_type": "Bearer", "expires_in": expires_in.to_string(), "ext_expires_in": "0",
        "expires_on": "1700000000", "not_before": "1699996400", "resource": "r", "access_token": token
    })
}

/// A token endpoint that hands out `token` (valid one hour).
pub async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(token, 3600)))
        .mount(server)
        .await;
}

/// A client for `server`, with no wall-clock time limits (tests run on paused time).
pub fn client(server: &MockServer) -> Vipps {
    builder(server).build().unwrap()
}

pub fn builder(server: &MockServer) -> vipps::VippsBuilder {
    Vipps::builder()
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .subscription_key(SUBSCRIPTION_KEY)
        .merchant_serial_number("123456")
        .system("acme-shop", "1.2.3")
        .plugin("acme-plugin", "4.5.6")
        .base_url(server.uri())
        .timeouts(Timeouts { connect: None, attempt: None, call: None })
        .http_client(vipps::reqwest::Client::builder().pool_idle_timeout(None).build().unwrap())
}

pub async fn requests_to(server: &MockServer, p: &str) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == p).collect()
}

pub fn agreement(id: &str, status: &str) -> Value {
    json!({
        "id": id, "uuid": "f3a7e6b2-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "status": status,
        "interval": {"unit": "MONTH", "count": 1},
        "pricing": {"type": "LEGACY", "currency": "NOK", "amount": 49900},
        "productName": "Newspaper", "countryCode": "NO", "created": "2024-01-01T00:00:00Z",
        "merchantAgreementUrl": "https://example.com/agreement", "merchantRedirectUrl": "https://example.com/back"
    })
}

pub fn fixture(rel: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
