//! The defects of the sandbox audit (issue 13), one test each, driven with raw HTTP over
//! loopback so that nothing in the SDK can paper over an answer.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vipps_sandbox::Sandbox;

/// A running sandbox, a token from `/accesstoken/get`, and helpers for authenticated calls.
struct Api {
    sandbox: Sandbox,
    http: Client,
    token: String,
}

impl Api {
    async fn start() -> Self {
        Self::with(Sandbox::start().await.unwrap()).await
    }

    async fn with(sandbox: Sandbox) -> Self {
        let http = Client::new();
        let mut api = Self {
            sandbox,
            http,
            token: String::new(),
        };
        api.refresh_token().await;
        api
    }

    async fn refresh_token(&mut self) {
        let c = self.sandbox.credentials();
        let r = self
            .http
            .post(self.url("/accesstoken/get"))
            .header("client_id", &c.client_id)
            .header("client_secret", &c.client_secret)
            .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        self.token = body["access_token"].as_str().unwrap().to_owned();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// An authenticated call as the sandbox's own merchant.
    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_merchant(
            method,
            path,
            &self.sandbox.credentials().merchant_serial_number,
        )
    }

    fn as_merchant(&self, method: Method, path: &str, msn: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header(
                "Ocp-Apim-Subscription-Key",
                &self.sandbox.credentials().subscription_key,
            )
            .header("Merchant-Serial-Number", msn)
    }

    /// Drafts an agreement under `key`; its id.
    async fn draft(&self, key: &str, body: &Value) -> String {
        let r = self
            .call(Method::POST, "/recurring/v3/agreements")
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let body: Value = r.json().await.unwrap();
        body["agreementId"].as_str().unwrap().to_owned()
    }
}

fn draft_body(name: &str) -> Value {
    json!({
        "pricing": {"type": "LEGACY", "amount": 10000, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://example.com/r",
        "merchantAgreementUrl": "https://example.com/a",
        "productName": name
    })
}

async fn problem(r: Response) -> Value {
    assert_eq!(
        r.headers()[CONTENT_TYPE],
        "application/problem+json",
        "{r:?}"
    );
    r.json().await.unwrap()
}

fn agreement_count(api: &Api) -> usize {
    api.sandbox
        .state()
        .recurring
        .lock()
        .unwrap()
        .agreement_count()
}

// ---------------------------------------------------------------------------------------
// 1. Idempotency keys apply to state-changing requests only, bound to the query too.

#[tokio::test]
async fn an_idempotency_key_on_a_get_is_ignored() {
    let api = Api::start().await;
    let id = api.draft("d-1", &draft_body("Old name")).await;
    let path = format!("/recurring/v3/agreements/{id}");
    let get = || {
        api.call(Method::GET, &path)
            .header("Idempotency-Key", "g1")
            .send()
    };
    let first = get().await.unwrap();
    assert_eq!(first.status(), 200);
    let patched = api
        .call(Method::PATCH, &path)
        .header("Idempotency-Key", "p-1")
        .json(&json!({"productName": "New name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204, "{:?}", patched.text().await);
    let second = get().await.unwrap();
    assert_eq!(second.status(), 200);
    assert!(
        second.headers().get("idempotent-replayed").is_none(),
        "a GET is never replayed"
    );
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["productName"], "New name");

    // The list under one key follows the query.
    let list = |status: &'static str| {
        api.call(
            Method::GET,
            &format!("/recurring/v3/agreements?status={status}"),
        )
        .header("Idempotency-Key", "g2")
        .send()
    };
    let pending: Value = list("PENDING").await.unwrap().json().await.unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let stopped: Value = list("STOPPED").await.unwrap().json().await.unwrap();
    assert_eq!(stopped.as_array().unwrap().len(), 0, "{stopped}");
}

// ---------------------------------------------------------------------------------------
// 2. A keyed request whose answer is over 4 MB gets it whole.

#[tokio::test]
async fn a_keyed_answer_over_4_mb_arrives_whole() {
    let api = Api::start().await;
    let mut body = draft_body("Long");
    body["merchantRedirectUrl"] = json!(format!("https://example.com/{}", "r".repeat(1000)));
    body["merchantAgreementUrl"] = json!(format!("https://example.com/{}", "a".repeat(1000)));
    let body = &body;
    let api_ref = &api;
    for chunk in 0..(2000 / 50) {
        let calls = (0..50).map(|i| async move {
            api_ref.draft(&format!("long-{chunk}-{i}"), body).await;
        });
        futures_join(calls).await;
    }
    let path = "/recurring/v3/agreements?status=PENDING&pageSize=2000";
    let plain = api.call(Method::GET, path).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.len() > 4 * 1024 * 1024,
        "the page must be over 4 MB to show anything: {}",
        plain.len()
    );
    let keyed = api
        .call(Method::GET, path)
        .header("Idempotency-Key", "big")
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    let keyed: Value = serde_json::from_slice(&keyed.bytes().await.unwrap()).unwrap();
    assert_eq!(keyed.as_array().unwrap().len(), 2000);
}

/// Runs futures to completion concurrently (no `futures` dependency needed).
async fn futures_join<F: std::future::Future<Output = ()>>(calls: impl Iterator<Item = F>) {
    let set: Vec<_> = calls.collect();
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 3. Stored answers expire on the sandbox clock and the store is bounded.

#[tokio::test]
async fn stored_answers_expire_after_24_hours_on_the_sandbox_clock() {
    let mut api = Api::start().await;
    api.draft("retained", &draft_body("First")).await;
    // Within the retention the key is bound to its first body.
    let r = api
        .call(Method::POST, "/recurring/v3/agreements")
        .header("Idempotency-Key", "retained")
        .json(&draft_body("Second"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    api.sandbox
        .advance_clock(Duration::from_secs(24 * 3600 + 60))
        .unwrap();
    api.refresh_token().await;
    // After it the key is free again: a new request, a new agreement.
    let before = agreement_count(&api);
    api.draft("retained", &draft_body("Second")).await;
    assert_eq!(agreement_count(&api), before + 1);
}

#[tokio::test]
async fn the_idempotency_store_is_bounded_and_evicts_the_oldest() {
    let api = Api::start().await;
    let cap = vipps_sandbox::state::IDEMPOTENCY_CAPACITY;
    let body = &draft_body("Many");
    let api_ref = &api;
    let total = cap + 10;
    for chunk in 0..total.div_ceil(64) {
        let calls = (chunk * 64..((chunk + 1) * 64).min(total)).map(|i| async move {
            api_ref.draft(&format!("many-{i}"), body).await;
        });
        futures_join(calls).await;
    }
    let stored = api.sandbox.state().idempotency.lock().unwrap().len();
    assert!(
        stored <= cap,
        "{stored} stored answers, more than the bound {cap}"
    );
    // The oldest went first: its key takes another body now.
    let before = agreement_count(&api);
    api.draft("many-0", &draft_body("Other")).await;
    assert_eq!(agreement_count(&api), before + 1);
}

// ---------------------------------------------------------------------------------------
// 4. The test controls take JSON only, refuse cross-site requests, bound their values.

#[tokio::test]
async fn controls_take_only_json() {
    let api = Api::start().await;
    let r = api
        .http
        .post(api.url("/_sandbox/faults"))
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"failNext":{"count":1,"status":500}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    problem(r).await;
    let form = api
        .http
        .post(api.url("/_sandbox/clock"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("advanceSeconds=60")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    // Nothing was planned: the next call succeeds.
    assert_eq!(
        api.call(Method::GET, "/recurring/v3/agreements")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn controls_refuse_cross_site_requests() {
    let api = Api::start().await;
    let faults = json!({"failNext": {"count": 1, "status": 500}});
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let r = api
            .http
            .post(api.url("/_sandbox/faults"))
            .header(name, value)
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        problem(r).await;
        let r = api
            .http
            .post(api.url("/_sandbox/expire-tokens"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
    }
    assert_eq!(
        api.call(Method::GET, "/recurring/v3/agreements")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The sandbox's own origin, or a request that is not from a page, is served.
    let own = api.sandbox.base_url().to_owned();
    let r = api
        .http
        .post(api.url("/_sandbox/faults"))
        .header("Origin", own)
        .header("Sec-Fetch-Site", "same-origin")
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = api
        .http
        .post(api.url("/_sandbox/faults"))
        .header("Sec-Fetch-Site", "none")
        .json(&json!({"failNext": {"count": 0, "status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn control_values_are_bounded() {
    let api = Api::start().await;
    let cases = [
        (json!({"latencyMs": u64::MAX}), "latencyMs"),
        (json!({"latencyMs": 3_600_000}), "latencyMs"),
        (
            json!({"failNext": {"count": 1_000_000, "status": 500}}),
            "failNext.count",
        ),
        (
            json!({"failNext": {"count": 1, "status": 600}}),
            "failNext.status",
        ),
    ];
    for (body, field) in cases {
        let r = api
            .http
            .post(api.url("/_sandbox/faults"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let p = problem(r).await;
        assert_eq!(p["extraDetails"][0]["name"], field, "{p}");
    }
    let r = api
        .http
        .post(api.url("/_sandbox/clock"))
        .json(&json!({"advanceSeconds": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r).await["extraDetails"][0]["name"],
        "advanceSeconds"
    );
    let r = api
        .http
        .post(api.url("/_sandbox/clock"))
        .json(&json!({"advanceSeconds": i64::MAX}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r).await["extraDetails"][0]["name"],
        "advanceSeconds"
    );
    // Nothing was planned: no latency, no failures.
    let call = api.call(Method::GET, "/recurring/v3/agreements").send();
    let r = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("no latency was set")
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------
// 5. Nothing but whitespace may follow a JSON body.

#[tokio::test]
async fn trailing_bytes_after_a_json_body_are_refused() {
    let api = Api::start().await;
    let body = format!("{}xyz", draft_body("Trailing"));
    let r = api
        .call(Method::POST, "/recurring/v3/agreements")
        .header("Idempotency-Key", "trailing")
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let p = problem(r).await;
    assert_eq!(p["extraDetails"][0]["name"], "body", "{p}");
    assert_eq!(agreement_count(&api), 0, "a refused draft creates nothing");
    // Trailing whitespace is fine.
    let body = format!("{} \n", draft_body("Whitespace"));
    let r = api
        .call(Method::POST, "/recurring/v3/agreements")
        .header("Idempotency-Key", "ws")
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

// ---------------------------------------------------------------------------------------
// 6. Every error the router produces is problem+json.

#[tokio::test]
async fn router_errors_are_problem_json() {
    let api = Api::start().await;
    let wrong_method = api
        .call(Method::DELETE, "/recurring/v3/agreements")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let allow = wrong_method
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    let p = problem(wrong_method).await;
    assert_eq!(p["status"], 405);
    assert_eq!(p["instance"], "/recurring/v3/agreements");
    let unknown = api
        .call(Method::GET, "/recurring/v3/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(problem(unknown).await["status"], 404);
}

// ---------------------------------------------------------------------------------------
// 7. One body limit (4 MiB), one status (413), with or without a key; a broken body is 400.

#[tokio::test]
async fn one_body_limit_with_one_status() {
    let api = Api::start().await;
    // 3 MB, under the limit: a draft padded with whitespace is read as any other.
    let padding = " ".repeat(3_000_000);
    let padded = format!("{}{padding}", draft_body("Padded"));
    let r = api
        .call(Method::POST, "/recurring/v3/agreements")
        .header("Idempotency-Key", "padded")
        .header(CONTENT_TYPE, "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let padded = format!("{}{padding}", psp_body("padded1", "order1"));
    let r = api
        .call(Method::POST, "/psp/v3/psppayments/init")
        .header("Psp-Id", "psp-1")
        .header(CONTENT_TYPE, "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // 5 MB, over it: 413 problem+json with a key, without one, and on a route without a body type.
    let big = "x".repeat(5 * 1024 * 1024);
    let routes = [
        (Method::POST, "/recurring/v3/agreements", Some("big")),
        (Method::POST, "/recurring/v3/agreements", None),
        (Method::POST, "/psp/v3/psppayments/init", None),
        (Method::POST, "/order-management/v1/images", None),
    ];
    for (method, path, key) in routes {
        let mut r = api
            .call(method, path)
            .header(CONTENT_TYPE, "application/json")
            .body(big.clone());
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 413, "{path} {key:?}");
        assert_eq!(problem(r).await["status"], 413);
    }
}

/// Sends raw bytes to the sandbox and reads the status line and body of the answer.
async fn raw(api: &Api, request: String) -> (u16, String) {
    let addr = api
        .sandbox
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn a_malformed_chunked_body_is_400_with_or_without_a_key() {
    let api = Api::start().await;
    let c = api.sandbox.credentials();
    for key in ["Idempotency-Key: chunked\r\n", ""] {
        let request = format!(
            "POST /recurring/v3/agreements HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {}\r\n\
             Ocp-Apim-Subscription-Key: {}\r\nMerchant-Serial-Number: {}\r\n{key}\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
            api.token, c.subscription_key, c.merchant_serial_number
        );
        let (status, answer) = raw(&api, request).await;
        assert_eq!(status, 400, "{key}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
}

// ---------------------------------------------------------------------------------------
// 8. Tokens: constant-time issue and check, expired ones dropped.

#[tokio::test]
async fn expired_tokens_are_dropped() {
    let api = Api::start().await;
    let state = api.sandbox.state();
    for _ in 0..500 {
        state.issue_token(
            Duration::from_secs(60),
            vipps_sandbox::state::TokenKind::AccessToken,
        );
    }
    api.sandbox
        .advance_clock(Duration::from_secs(3 * 3600))
        .unwrap();
    state.issue_token(
        Duration::from_secs(60),
        vipps_sandbox::state::TokenKind::AccessToken,
    );
    let live = state.tokens.lock().unwrap().len();
    assert!(
        live < 10,
        "{live} tokens kept, though all but one expired hours ago"
    );
}

#[tokio::test]
async fn issuing_a_token_does_not_scan_the_live_ones() {
    use vipps_sandbox::state::{IssuedToken, TokenKind};
    let api = Api::start().await;
    let state = api.sandbox.state();
    let issue = |n: usize| {
        let started = std::time::Instant::now();
        for _ in 0..n {
            state.issue_token(Duration::from_secs(3600), TokenKind::AccessToken);
        }
        started.elapsed()
    };
    let few = issue(2000);
    let expires = state.now() + chrono::Duration::hours(1);
    {
        let mut tokens = state.tokens.lock().unwrap();
        for i in 0..100_000 {
            tokens.insert(
                format!("live-{i}"),
                IssuedToken {
                    expires,
                    kind: TokenKind::AccessToken,
                },
            );
        }
    }
    let many = issue(2000);
    // A scan of 100,000 tokens per issue makes this hundreds of times slower; a hash map
    // lookup keeps it within noise (a factor of 20 leaves room for a busy machine).
    assert!(
        many < few * 20 + Duration::from_millis(50),
        "2,000 tokens took {few:?} fresh, {many:?} with 100,000 live"
    );
    assert!(state.token_valid("live-99999"));
}

// ---------------------------------------------------------------------------------------
// 9. Small items.

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let api = Api::start().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = api
            .http
            .get(api.url("/recurring/v3/agreements"))
            .header("Authorization", format!("{scheme} {}", api.token))
            .header(
                "Ocp-Apim-Subscription-Key",
                &api.sandbox.credentials().subscription_key,
            )
            .header(
                "Merchant-Serial-Number",
                &api.sandbox.credentials().merchant_serial_number,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

fn psp_body(id: &str, order: &str) -> Value {
    json!({
        "pspTransactionId": id,
        "merchantOrderId": order,
        "amount": 1000,
        "currency": "NOK",
        "pspRedirectUrl": "https://psp.example.com/redirect",
        "makePaymentUrl": "https://psp.example.com/makepayment",
        "makePaymentToken": "lfkhwef3op48yufpcno3fh34qp8fyncpf83hy4",
        "paymentText": "Socks",
        "isApp": false,
        "skipLandingPage": false
    })
}

#[tokio::test]
async fn psp_transaction_ids_belong_to_one_merchant() {
    let api = Api::start().await;
    for msn in ["123456", "654321"] {
        let r = api
            .as_merchant(Method::POST, "/psp/v3/psppayments/init", msn)
            .header("Psp-Id", "psp-1")
            .json(&psp_body("shared1", "order1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "merchant {msn}: {:?}", r.text().await);
    }
    // The same merchant may not use it twice.
    let again = api
        .as_merchant(Method::POST, "/psp/v3/psppayments/init", "654321")
        .header("Psp-Id", "psp-1")
        .json(&psp_body("shared1", "order2"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(
        problem(again).await["extraDetails"][0]["name"],
        "pspTransactionId"
    );
}

#[tokio::test]
async fn the_psp_redirect_url_ignores_the_host_header() {
    let api = Api::start().await;
    let r = api
        .call(Method::POST, "/psp/v3/psppayments/init")
        .header("Psp-Id", "psp-1")
        .header("Host", "evil.example")
        .json(&psp_body("hosted1", "order1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let url = body["vippsRedirectUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/", api.sandbox.base_url())),
        "{url}"
    );
}
