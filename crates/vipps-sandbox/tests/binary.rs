//! The `vipps-sandbox` binary serves on the port it is given and prints where.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_tokens_on_the_port_it_prints() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vipps-sandbox"))
        .args(["--port", "0", "--token-lifetime", "120", "--production"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").unwrap();
    let url = first.strip_prefix("vipps-sandbox listening on ").expect("the address line").to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{url}");
    let printed: Vec<String> = lines.take(5).map(Result::unwrap).collect();
    assert!(printed.iter().any(|l| l.contains("test mode:") && l.contains("false")), "{printed:?}");

    let c = vipps_sandbox::Credentials::default();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{url}/accesstoken/get"))
        .header("client_id", &c.client_id)
        .header("client_secret", &c.client_secret)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], "120");
    // --production: the test-only force-accept is not served, even for an agreement that exists.
    let token = token["access_token"].as_str().unwrap();
    let draft: serde_json::Value = http
        .post(format!("{url}/recurring/v3/agreements"))
        .bearer_auth(token)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .header("Merchant-Serial-Number", &c.merchant_serial_number)
        .header("Idempotency-Key", "draft-1")
        .json(&serde_json::json!({
            "pricing": {"type": "LEGACY", "amount": 10000, "currency": "NOK"},
            "interval": {"unit": "MONTH", "count": 1},
            "merchantRedirectUrl": "https://example.com/r",
            "merchantAgreementUrl": "https://example.com/a",
            "productName": "Test"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agreement_id = draft["agreementId"].as_str().unwrap_or_else(|| panic!("a draft: {draft}"));
    let accept = http
        .patch(format!("{url}/recurring/v3/agreements/{agreement_id}/accept"))
        .bearer_auth(token)
        .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
        .header("Merchant-Serial-Number", &c.merchant_serial_number)
        .header("Idempotency-Key", "k1")
        .json(&serde_json::json!({"phoneNumber": "4791234567"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accept.status(), 404);
    let problem: serde_json::Value = accept.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("only available in the test environment"), "{problem}");
    drop(child);
}

#[test]
fn a_port_in_use_is_a_clear_message_and_a_failure() {
    // Occupy a port on the address the binary listens on, then ask it for that port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_vipps-sandbox"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it exits with a failure: {stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}: the port is already in use")) && stderr.contains("--port"),
        "{stderr}"
    );
    assert!(!stderr.contains("Os {"), "no raw io::Error: {stderr}");
    assert!(out.stdout.is_empty(), "nothing claims to listen: {}", String::from_utf8_lossy(&out.stdout));
    drop(taken);
}
