//! The Login helpers (`vipps::login::Provider`) against the sandbox: the redirect flow end to
//! end with the landing page followed by plain HTTP form posts, `client_secret_post`, the
//! typed failures of ID token validation, and CIBA polling on paused tokio time (against the
//! sandbox, and against a scripted token endpoint for `slow_down`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use vipps::login::{CibaRequest, LoginError, Provider};
use vipps::reqwest;
use vipps::Vipps;
use vipps_sandbox::login::{jwk_set, sign_id_token, KEY_ID, SIGNING_KEY_PEM, TEST_USER_SUB};
use vipps_sandbox::Sandbox;

fn client(sandbox: &Sandbox) -> Vipps {
    let c = sandbox.credentials();
    Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .merchant_serial_number(&c.merchant_serial_number)
        .base_url(sandbox.base_url())
        .build()
        .unwrap()
}

/// A client for paused tokio time: no wall-clock limits, no idle-pool timer.
fn paused_client(base_url: &str, sandbox: &Sandbox) -> Vipps {
    let c = sandbox.credentials();
    let http = reqwest::Client::builder().pool_idle_timeout(None).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .merchant_serial_number(&c.merchant_serial_number)
        .base_url(base_url)
        .timeouts(vipps::Timeouts { connect: None, attempt: None, call: None })
        .http_client(http)
        .build()
        .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Plays the user: opens the authorization URL, reads the landing page, posts `decision` with
/// its form, and returns the query of the redirect to the callback.
async fn follow(sandbox: &Sandbox, url: &str, decision: &str, callback: &str) -> String {
    let http = browser();
    let page = http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).expect("the page has the form") + marker.len();
    let request_id = &html[start..start + html[start..].find('"').unwrap()];
    let action = format!("{}/access-management-1.0/access/oauth2/auth", sandbox.base_url());
    let answer = http.post(action).form(&[("request_id", request_id), ("decision", decision)]).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(callback), "{location}");
    url::Url::parse(&location).unwrap().query().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_redirect_flow_logs_in_and_userinfo_has_the_consented_claims() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let provider = Provider::discover(&vipps).await.unwrap();
    assert_eq!(provider.issuer(), format!("{}/access-management-1.0/access/", sandbox.base_url()));
    let callback = "http://127.0.0.1:9/callback";
    let request = provider.authorize(callback, &["name", "email"]).unwrap();
    let url = url::Url::parse(&request.url).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid name email");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["state"], request.pending.state());
    assert_eq!(query["state"].len(), 43, "32 random bytes");
    let again = provider.authorize(callback, &["name"]).unwrap();
    assert_ne!(again.pending.state(), request.pending.state(), "fresh randomness per login");
    // None of the secrets of a pending login shows in its Debug, nor in the request's.
    for shown in [format!("{:?}", request.pending), format!("{request:?}")] {
        for secret in [&query["state"], &query["nonce"]] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
        }
    }

    let returned = follow(&sandbox, &request.url, "approve", callback).await;
    let tokens = provider.exchange(&request.pending, &returned).await.unwrap();
    assert_eq!(tokens.claims.sub, TEST_USER_SUB);
    assert_eq!(tokens.claims.nonce.as_deref(), Some(query["nonce"].as_str()));
    assert_eq!(tokens.scope.as_deref(), Some("openid name email"));
    let shown = format!("{tokens:?}");
    assert!(!shown.contains(tokens.access_token()) && !shown.contains(tokens.id_token()), "{shown}");
    assert!(!shown.contains(query["nonce"].as_str()), "the claims hide the nonce: {shown}");
    // The generated token request and CIBA answer hide the code and the CIBA handle.
    let query_of_return = returned.rsplit('?').next().unwrap_or_default();
    let code = url::form_urlencoded::parse(query_of_return.as_bytes()).find(|(k, _)| k == "code").unwrap().1.into_owned();
    let body = vipps::login::types::TokenBody {
        auth_req_id: Some("ciba-handle-1234".into()),
        client_id: None,
        client_secret: None,
        code: Some(code.clone()),
        code_verifier: None,
        grant_type: "authorization_code".into(),
        redirect_uri: None,
    };
    let shown = format!("{body:?}");
    assert!(!shown.contains(&code) && !shown.contains("ciba-handle-1234"), "{shown}");
    let ack: vipps::login::types::BackchannelAuthenticationResponse =
        serde_json::from_value(serde_json::json!({"auth_req_id": "ciba-handle-1234", "expires_in": 600})).unwrap();
    assert!(!format!("{ack:?}").contains("ciba-handle-1234"));

    let info = vipps.userinfo_for(tokens.access_token()).unwrap().userinfo_authorization_code().send().await.unwrap().into_inner();
    assert_eq!(info.sub.as_deref(), Some(TEST_USER_SUB));
    assert_eq!(info.name.as_deref(), Some("Ada Lovelace"));
    assert!(info.email.is_some());
    assert!(info.address.is_none() && info.phone_number.is_none() && info.nin.is_none(), "not consented: {info:?}");

    // The code is single use: the same callback again is refused by the token endpoint.
    match provider.exchange(&request.pending, &returned).await {
        Err(LoginError::Api(vipps::Error::Api { status: 400, problem })) => assert_eq!(problem.other["error"], "invalid_grant"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let provider = Provider::discover(&vipps).await.unwrap().client_secret_post();
    let request = provider.authorize("https://example.com/cb", &["phoneNumber"]).unwrap();
    let returned = follow(&sandbox, &request.url, "approve", "https://example.com/cb").await;
    let tokens = provider.exchange(&request.pending, &returned).await.unwrap();
    let info = vipps.userinfo_for(tokens.access_token()).unwrap().userinfo_authorization_code().send().await.unwrap().into_inner();
    assert_eq!(info.phone_number.as_deref().map(|p| p.to_string()), Some("4712345678".into()));
    assert!(info.name.is_none());
}

#[tokio::test]
async fn a_rejected_login_and_a_foreign_state_are_typed_errors() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = client(&sandbox);
    let provider = Provider::discover(&vipps).await.unwrap();
    let request = provider.authorize("https://example.com/cb", &["name"]).unwrap();
    let returned = follow(&sandbox, &request.url, "reject", "https://example.com/cb").await;
    match provider.exchange(&request.pending, &returned).await {
        Err(LoginError::Denied { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }

    // A callback with another login's state (or none) is refused before anything is sent.
    let mine = provider.authorize("https://example.com/cb", &["name"]).unwrap();
    let theirs = provider.authorize("https://example.com/cb", &["name"]).unwrap();
    let returned = follow(&sandbox, &theirs.url, "approve", "https://example.com/cb").await;
    let calls = sandbox.calls();
    assert!(matches!(provider.exchange(&mine.pending, &returned).await, Err(LoginError::StateMismatch)));
    assert!(matches!(provider.exchange(&mine.pending, "code=abc").await, Err(LoginError::StateMismatch)));
    let state_only = format!("state={}", mine.pending.state());
    assert!(matches!(provider.exchange(&mine.pending, &state_only).await, Err(LoginError::MissingCode)));
    assert_eq!(sandbox.calls(), calls, "nothing was sent");
    // The rightful owner still logs in with it.
    assert!(provider.exchange(&theirs.pending, &returned).await.is_ok());
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

const ISSUER: &str = "https://issuer.example/access-management-1.0/access/";

/// A provider for [`ISSUER`] with the sandbox's public key, and the client id it expects.
fn offline_provider() -> (Provider, String) {
    let vipps = Vipps::builder()
        .client_id("client-1")
        .client_secret("secret-1")
        .subscription_key("key-1")
        .merchant_serial_number("123456")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let provider = Provider::from_parts(&vipps, ISSUER, "https://issuer.example/auth", &jwk_set()).unwrap();
    (provider, "client-1".to_owned())
}

fn claims(aud: &str) -> serde_json::Value {
    let t = now();
    json!({ "iss": ISSUER, "aud": aud, "sub": "user-1", "iat": t, "exp": t + 600, "nonce": "n-1" })
}

fn sign_with(header: jsonwebtoken::Header, claims: &serde_json::Value, key: &jsonwebtoken::EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[test]
fn id_token_validation_failures_each_have_their_error() {
    let (provider, aud) = offline_provider();
    let good_claims = claims(&aud);
    let good = sign_id_token(&good_claims);
    let ok = provider.validate_id_token(&good, Some("n-1")).unwrap();
    assert_eq!((ok.sub.as_str(), ok.aud.as_slice()), ("user-1", &[aud.clone()][..]));
    // `aud` as an array naming this client is fine too.
    let mut many = claims(&aud);
    many["aud"] = json!(["other", aud]);
    provider.validate_id_token(&sign_id_token(&many), Some("n-1")).unwrap();

    let check = |token: &str| provider.validate_id_token(token, Some("n-1"));
    assert!(matches!(check(&sign_id_token(&claims("someone-else"))), Err(LoginError::WrongAudience)));
    let mut c = claims(&aud);
    c["iss"] = json!("https://evil.example/");
    assert!(matches!(check(&sign_id_token(&c)), Err(LoginError::WrongIssuer { .. })));
    assert!(matches!(provider.validate_id_token(&good, Some("n-2")), Err(LoginError::NonceMismatch)));
    let mut c = claims(&aud);
    c.as_object_mut().unwrap().remove("nonce");
    assert!(matches!(check(&sign_id_token(&c)), Err(LoginError::MissingNonce)));
    // Without an expected nonce (a token read later), no nonce is needed.
    provider.validate_id_token(&sign_id_token(&c), None).unwrap();

    // Time: exp and iat within the leeway (60 s) pass, beyond it fail.
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(secs as u64);
    // (From the claims `good` was signed with: a second may have passed since.)
    let exp = good_claims["exp"].as_i64().unwrap();
    let iat = good_claims["iat"].as_i64().unwrap();
    provider.validate_id_token_at(&good, Some("n-1"), at(exp + 59)).unwrap();
    assert!(matches!(provider.validate_id_token_at(&good, Some("n-1"), at(exp + 61)), Err(LoginError::Expired { .. })));
    provider.validate_id_token_at(&good, Some("n-1"), at(iat - 59)).unwrap();
    assert!(matches!(
        provider.validate_id_token_at(&good, Some("n-1"), at(iat - 61)),
        Err(LoginError::IssuedInTheFuture { .. })
    ));

    // Keys and signatures.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rotated-away".into());
    match check(&sign_with(header, &claims(&aud), &key)) {
        Err(LoginError::UnknownKeyId(kid)) => assert_eq!(kid, "rotated-away"),
        other => panic!("{other:?}"),
    }
    let no_kid = sign_with(jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims(&aud), &key);
    assert!(matches!(check(&no_kid), Err(LoginError::MissingKeyId)));
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(KEY_ID.into());
    let hmac = sign_with(hs, &claims(&aud), &jsonwebtoken::EncodingKey::from_secret(b"the public modulus, say").unwrap());
    assert!(matches!(check(&hmac), Err(LoginError::UnsupportedAlgorithm(_))));
    // Another payload under the same signature.
    let parts: Vec<&str> = good.split('.').collect();
    let other_payload = sign_id_token(&claims("someone-else"));
    let forged = format!("{}.{}.{}", parts[0], other_payload.split('.').nth(1).unwrap(), parts[2]);
    assert!(matches!(check(&forged), Err(LoginError::BadSignature)));
    // A signature with one character changed (in the middle: the last one carries padding bits).
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[100] = if sig[100] == 'A' { 'B' } else { 'A' };
    let sig: String = sig.into_iter().collect();
    assert!(matches!(check(&format!("{}.{}.{sig}", parts[0], parts[1])), Err(LoginError::BadSignature)));

    // Hostile shapes: errors, never panics.
    let none_alg = format!("{}.{}.", b64(r#"{"alg":"none","kid":"vipps-sandbox-login-1"}"#), parts[1]);
    for hostile in [
        String::new(),
        "....".into(),
        "a.b.c".into(),
        none_alg,
        format!("{}.{}.{}", parts[0], b64("[1,2,3]"), parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        "x".repeat(20_000),
        format!("{}.{}.{}", b64(r#"{"alg":"RS256","kid":7}"#), parts[1], parts[2]),
    ] {
        match check(&hostile) {
            Err(LoginError::MalformedIdToken(_) | LoginError::UnsupportedAlgorithm(_) | LoginError::BadSignature) => {}
            other => panic!("{hostile:.40}: {other:?}"),
        }
    }
    // A well-signed token with claims of the wrong types is malformed.
    let mut c = claims(&aud);
    c["exp"] = json!("tomorrow");
    assert!(matches!(check(&sign_id_token(&c)), Err(LoginError::MalformedIdToken(_))));

    // No error message shows the token.
    let e = check(&forged).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(parts[2]));
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(start_paused = true)]
async fn ciba_polls_at_the_interval_until_the_user_approves() {
    let sandbox = Arc::new(Sandbox::start().await.unwrap());
    let vipps = paused_client(sandbox.base_url(), &sandbox);
    let provider = Provider::discover(&vipps).await.unwrap();
    let started = tokio::time::Instant::now();
    let pending = provider.start_ciba(CibaRequest::new("4712345678", &["name"]).binding_message("4MZ-CQ3")).await.unwrap();
    assert_eq!((pending.interval, pending.expires_in), (Duration::from_secs(5), Duration::from_secs(600)));
    let approver = {
        let sandbox = sandbox.clone();
        let id = pending.auth_req_id().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(12)).await;
            assert!(sandbox.approve_ciba(&id));
        })
    };
    let calls = sandbox.calls();
    let tokens = provider.poll_ciba(&pending).await.unwrap();
    approver.await.unwrap();
    // Polls at 5 s and 10 s (pending), 15 s (approved): three token requests, never a slow_down.
    assert_eq!(started.elapsed().as_secs(), 15);
    assert_eq!(sandbox.calls() - calls, 3);
    assert_eq!(tokens.claims.sub, TEST_USER_SUB);
    assert_eq!(tokens.claims.auth_req_id.as_deref(), Some(pending.auth_req_id()));
    let info = vipps.userinfo_for(tokens.access_token()).unwrap().userinfo_authorization_code().send().await.unwrap().into_inner();
    assert_eq!(info.name.as_deref(), Some("Ada Lovelace"));
}

#[tokio::test(start_paused = true)]
async fn ciba_gives_up_at_expires_in_and_reports_a_refusal() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = paused_client(sandbox.base_url(), &sandbox);
    let provider = Provider::discover(&vipps).await.unwrap();
    let started = tokio::time::Instant::now();
    let pending = provider.start_ciba(CibaRequest::new("4712345678", &["openid"])).await.unwrap();
    assert!(matches!(provider.poll_ciba(&pending).await, Err(LoginError::CibaExpired)));
    // The last poll is at 600 s at the latest; none after the request expired.
    assert!(started.elapsed() <= Duration::from_secs(600), "{:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_secs(595), "{:?}", started.elapsed());

    let pending = provider.start_ciba(CibaRequest::new("4712345678", &["openid"])).await.unwrap();
    assert!(sandbox.deny_ciba(pending.auth_req_id()));
    match provider.poll_ciba(&pending).await {
        Err(LoginError::Denied { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }
    // Bad input is refused before anything is sent.
    let calls = sandbox.calls();
    assert!(matches!(provider.start_ciba(CibaRequest::new("+47 123", &["name"])).await, Err(LoginError::InvalidInput(_))));
    assert_eq!(sandbox.calls(), calls);
}

/// A token endpoint that answers `slow_down` once, then `authorization_pending`, then tokens,
/// and records when each poll came (paused time, the same runtime).
#[tokio::test(start_paused = true)]
async fn slow_down_adds_five_seconds_to_the_interval() {
    use axum::routing::{get, post};
    let sandbox = Sandbox::start().await.unwrap();
    let issuer = "http://scripted/access-management-1.0/access/";
    let polls: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let started = tokio::time::Instant::now();
    let client_id = sandbox.credentials().client_id.clone();
    let app = axum::Router::new()
        .route(
            "/vipps-login-ciba/api/backchannel/authentication",
            post(|| async { axum::Json(json!({ "auth_req_id": "req-1", "expires_in": 120, "interval": 5 })) }),
        )
        .route(
            "/access-management-1.0/access/oauth2/token",
            post({
                let polls = polls.clone();
                move |body: String| {
                    let polls = polls.clone();
                    let client_id = client_id.clone();
                    async move {
                        let nonce = url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "auth_req_id").map(|(_, v)| v.into_owned());
                        assert_eq!(nonce.as_deref(), Some("req-1"));
                        let n = {
                            let mut p = polls.lock().unwrap();
                            p.push(started.elapsed());
                            p.len()
                        };
                        let error = |e: &str| (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({ "error": e }))).into_response();
                        use axum::response::IntoResponse;
                        match n {
                            1 => error("slow_down"),
                            2 => error("authorization_pending"),
                            _ => {
                                let t = now();
                                let claims = json!({ "iss": issuer, "aud": client_id, "sub": "u", "iat": t, "exp": t + 60, "auth_req_id": "req-1" });
                                axum::Json(json!({ "access_token": "at", "id_token": sign_id_token(&claims), "token_type": "bearer" })).into_response()
                            }
                        }
                    }
                }
            }),
        )
        .route("/unused", get(|| async { "" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let vipps = paused_client(&base, &sandbox);
    let provider = Provider::from_parts(&vipps, issuer, "http://scripted/auth", &jwk_set()).unwrap();
    let pending = provider.start_ciba(CibaRequest::new("4712345678", &["name"])).await.unwrap();
    // The scripted token has no nonce: the poll expects one, so it is refused as such.
    assert!(matches!(provider.poll_ciba(&pending).await, Err(LoginError::MissingNonce)));
    let at: Vec<u64> = polls.lock().unwrap().iter().map(|d| d.as_secs()).collect();
    assert_eq!(at, vec![5, 15, 25], "5 s, then 10 s after the slow_down");
}

/// A back-channel answer with absurd `expires_in` and `interval` neither panics nor polls
/// forever: both count as a day at most.
#[tokio::test(start_paused = true)]
async fn hostile_ciba_timings_are_bounded() {
    use axum::routing::post;
    let sandbox = Sandbox::start().await.unwrap();
    let polls = Arc::new(Mutex::new(0u32));
    let app = axum::Router::new()
        .route(
            "/vipps-login-ciba/api/backchannel/authentication",
            post(|| async { axum::Json(json!({ "auth_req_id": "r", "expires_in": i64::MAX, "interval": i64::MAX })) }),
        )
        .route(
            "/access-management-1.0/access/oauth2/token",
            post({
                let polls = polls.clone();
                move || {
                    *polls.lock().unwrap() += 1;
                    async { (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "authorization_pending" }))) }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let vipps = paused_client(&base, &sandbox);
    let provider = Provider::from_parts(&vipps, ISSUER, "http://scripted/auth", &jwk_set()).unwrap();
    let started = tokio::time::Instant::now();
    let pending = provider.start_ciba(CibaRequest::new("4712345678", &["name"])).await.unwrap();
    assert_eq!((pending.expires_in, pending.interval), (Duration::from_secs(86_400), Duration::from_secs(86_400)));
    assert!(matches!(provider.poll_ciba(&pending).await, Err(LoginError::CibaExpired)));
    assert_eq!(*polls.lock().unwrap(), 1);
    assert_eq!(started.elapsed().as_secs(), 86_400);
}
