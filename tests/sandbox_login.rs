//! Every operation of the generated Login and Userinfo crates through the facade against the
//! sandbox (`vipps.login()`, `vipps.userinfo_for(token)`, `vipps.userinfo()`), and the
//! sandbox's own rules: client authentication, PKCE, single-use codes, CIBA `slow_down`, and
//! Userinfo limited to the consented scopes.

#[path = "support/mod.rs"]
mod support;

use base64::Engine as _;
use sha2::Digest as _;
use vipps::Vipps;
use vipps_core::reqwest;
use vipps_login::types::{BackchannelAuthenticationBody, TokenBody};
use vipps_sandbox::login::TEST_USER_SUB;
use vipps_sandbox::Sandbox;

fn oauth_error(e: &vipps_core::Error) -> (u16, String) {
    match e {
        vipps_core::Error::Api { status, problem } => (*status, problem.other.get("error").and_then(|v| v.as_str()).unwrap_or_default().to_owned()),
        vipps_core::Error::Authentication { status, problem, .. } => (
            status.unwrap_or_default(),
            problem.as_ref().and_then(|p| p.other.get("error")).and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
        ),
        other => panic!("not an API error: {other:?}"),
    }
}

/// Logs in through the landing page with a PKCE verifier; returns the code.
async fn code_for(sandbox: &Sandbox, scope: &str, verifier: &str) -> String {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!("{}/access-management-1.0/access/oauth2/auth", sandbox.base_url());
    let page = http
        .get(&auth)
        .query(&[
            ("client_id", sandbox.credentials().client_id.as_str()),
            ("response_type", "code"),
            ("scope", scope),
            ("redirect_uri", "https://example.com/cb"),
            ("state", "s-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"request_id\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let id = &page[start..start + page[start..].find('"').unwrap()];
    let answer = http.post(&auth).form(&[("request_id", id), ("decision", "approve")]).send().await.unwrap();
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "s-1");
    pairs["code"].clone()
}

fn token_body(code: &str, verifier: &str) -> vipps_login::types::builder::TokenBody {
    TokenBody::builder().grant_type("authorization_code").code(code).redirect_uri("https://example.com/cb").code_verifier(verifier)
}

const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123";

#[tokio::test]
async fn discovery_and_jwks() {
    let (sandbox, vipps) = support::start().await;
    let config = vipps.login().openid_configuration().send().await.unwrap().into_inner();
    assert_eq!(config.issuer, format!("{}/access-management-1.0/access/", sandbox.base_url()));
    assert_eq!(config.code_challenge_methods_supported, vec!["S256".to_owned()]);
    assert!(config.backchannel_authentication_endpoint.unwrap().ends_with("/vipps-login-ciba/api/backchannel/authentication"));
    let jwks = vipps.login().fetch_jwks().send().await.unwrap().into_inner();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!((jwks.keys[0].kid.as_str(), jwks.keys[0].alg.as_str()), (vipps_sandbox::login::KEY_ID, "RS256"));
    assert!(jwks.keys[0].d.is_none(), "no private part in the JWKS");
}

#[tokio::test]
async fn authorize_without_parameters_is_an_oauth_error_and_the_page_escapes_what_it_shows() {
    let (sandbox, vipps) = support::start().await;
    // The published operation documents no query parameters: alone, it is a request error.
    match vipps.login().authorize().send().await {
        Err(e) => assert_eq!(oauth_error(&e), (400, "invalid_request".into())),
        Ok(r) => panic!("answered {}", r.status()),
    }
    let http = reqwest::Client::new();
    let auth = format!("{}/access-management-1.0/access/oauth2/auth", sandbox.base_url());
    let c = &sandbox.credentials().client_id;
    let page = http
        .get(&auth)
        .query(&[("client_id", c.as_str()), ("response_type", "code"), ("scope", "openid <script>"), ("redirect_uri", "https://x.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("openid &lt;script&gt;") && !html.contains("<script>"), "{html}");
    for (query, why) in [
        (vec![("client_id", "nobody"), ("response_type", "code"), ("scope", "openid"), ("redirect_uri", "https://x.example/")], "client"),
        (vec![("client_id", c.as_str()), ("response_type", "code"), ("scope", "name"), ("redirect_uri", "https://x.example/")], "openid"),
        (vec![("client_id", c.as_str()), ("response_type", "code"), ("scope", "openid"), ("redirect_uri", "javascript:alert(1)")], "uri"),
        (
            vec![
                ("client_id", c.as_str()),
                ("response_type", "code"),
                ("scope", "openid"),
                ("redirect_uri", "https://x.example/"),
                ("code_challenge", "abc"),
                ("code_challenge_method", "plain"),
            ],
            "plain PKCE",
        ),
    ] {
        let status = http.get(&auth).query(&query).send().await.unwrap().status();
        assert!(status == 400 || status == 401, "{why}: {status}");
    }
}

#[tokio::test]
async fn the_token_endpoint_checks_client_auth_pkce_and_single_use() {
    let (sandbox, vipps) = support::start().await;
    // Wrong client secret (Basic): 401 invalid_client.
    let wrong = support::builder(&sandbox).client_secret("not-the-secret").build().unwrap();
    let code = code_for(&sandbox, "openid name", VERIFIER).await;
    let e = wrong.login().token().body(token_body(&code, VERIFIER)).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (401, "invalid_client".into()));
    // A wrong verifier: invalid_grant, and the code is spent.
    let e = vipps.login().token().body(token_body(&code, &VERIFIER.replace('a', "b"))).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (400, "invalid_grant".into()));
    let e = vipps.login().token().body(token_body(&code, VERIFIER)).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (400, "invalid_grant".into()));
    // The right one: tokens, and Userinfo with them.
    let code = code_for(&sandbox, "openid name address", VERIFIER).await;
    let tokens = vipps.login().token().body(token_body(&code, VERIFIER)).send().await.unwrap().into_inner();
    assert!(tokens.id_token.is_some());
    assert!(!format!("{tokens:?}").contains(tokens.access_token.as_deref().unwrap()));
    let user = vipps.userinfo_for(tokens.access_token.as_deref().unwrap()).unwrap();
    let info = user.userinfo_authorization_code().send().await.unwrap().into_inner();
    assert_eq!(info.sub.as_deref(), Some(TEST_USER_SUB));
    assert!(info.name.is_some() && info.address.is_some() && info.email.is_none(), "{info:?}");
    // Basic and client_secret_post at once: refused.
    let code = code_for(&sandbox, "openid", VERIFIER).await;
    let both = token_body(&code, VERIFIER).client_id(sandbox.credentials().client_id.clone()).client_secret(sandbox.credentials().client_secret.clone());
    let e = vipps.login().token().body(both).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (401, "invalid_client".into()));
}

#[tokio::test]
async fn backchannel_authentication_and_slow_down() {
    let (sandbox, vipps) = support::start().await;
    let body = || BackchannelAuthenticationBody::builder().scope("openid name").login_hint("urn:msisdn:4712345678");
    let started = vipps.login().backchannel_authentication().body(body()).send().await.unwrap().into_inner();
    assert_eq!((started.expires_in, started.interval), (600, Some(5)));
    let poll = || TokenBody::builder().grant_type("urn:openid:params:grant-type:ciba").auth_req_id(started.auth_req_id.clone());
    let e = vipps.login().token().body(poll()).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (400, "authorization_pending".into()));
    // At once again, sooner than the interval: slow_down.
    let e = vipps.login().token().body(poll()).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (400, "slow_down".into()));
    // A bad login hint; a binding message breaking its pattern is refused by the type.
    let e = vipps.login().backchannel_authentication().body(body().login_hint("4712345678")).send().await.unwrap_err();
    assert_eq!(oauth_error(&e), (400, "invalid_request".into()));
    let calls = sandbox.calls();
    let e = vipps.login().backchannel_authentication().body(body().binding_message("lower")).send().await.unwrap_err();
    assert!(matches!(e, vipps_core::Error::InvalidInput { .. }), "{e:?}");
    assert_eq!(sandbox.calls(), calls, "refused before sending");
}

#[tokio::test]
async fn userinfo_by_sub_takes_the_merchant_token_and_the_user_endpoint_the_users() {
    let (sandbox, vipps) = support::start().await;
    // Before any consent: 404.
    let e = vipps.userinfo().get_userinfo().sub(TEST_USER_SUB).send().await.unwrap_err();
    assert!(matches!(e, vipps_core::Error::Api { status: 404, .. }), "{e:?}");
    let code = code_for(&sandbox, "openid email", VERIFIER).await;
    vipps.login().token().body(token_body(&code, VERIFIER)).send().await.unwrap();
    let info = vipps.userinfo().get_userinfo().sub(TEST_USER_SUB).send().await.unwrap().into_inner();
    assert!(info.email.is_some() && info.name.is_none(), "{info:?}");
    // The user endpoint without a user token: refused before sending; with a merchant token
    // or a made-up one: 401.
    let calls = sandbox.calls();
    let e = vipps.userinfo().userinfo_authorization_code().send().await.unwrap_err();
    assert!(matches!(e, vipps_core::Error::InvalidInput { .. }), "{e:?}");
    assert_eq!(sandbox.calls(), calls);
    assert!(matches!(vipps.userinfo_for(""), Err(vipps_core::Error::InvalidInput { .. })));
    assert!(matches!(vipps.userinfo_for("a\nb"), Err(vipps_core::Error::InvalidInput { .. })));
    let e = vipps.userinfo_for("made-up").unwrap().userinfo_authorization_code().send().await.unwrap_err();
    assert!(matches!(e, vipps_core::Error::Authentication { status: Some(401), .. }), "{e:?}");
    let client = vipps.userinfo_for("secret-user-token").unwrap();
    assert!(!format!("{client:?}").contains("secret-user-token"));
    // An expired user token (sandbox clock) is a 401.
    let code = code_for(&sandbox, "openid", VERIFIER).await;
    let tokens = vipps.login().token().body(token_body(&code, VERIFIER)).send().await.unwrap().into_inner();
    sandbox.advance_clock(std::time::Duration::from_secs(3601)).unwrap();
    let e = vipps.userinfo_for(tokens.access_token.as_deref().unwrap()).unwrap().userinfo_authorization_code().send().await.unwrap_err();
    assert!(matches!(e, vipps_core::Error::Authentication { status: Some(401), .. }), "{e:?}");
    let _: &Vipps = &vipps;
}

/// Landing pages left unanswered, codes never exchanged and tokens are forgotten once expired,
/// when there are many: the store does not grow without end.
#[tokio::test]
async fn expired_logins_are_swept_when_there_are_many() {
    let (sandbox, _vipps) = support::start().await;
    let http = reqwest::Client::new();
    let auth = format!("{}/access-management-1.0/access/oauth2/auth", sandbox.base_url());
    let c = sandbox.credentials().client_id.clone();
    let query = [("client_id", c.as_str()), ("response_type", "code"), ("scope", "openid"), ("redirect_uri", "https://x.example/")];
    let open = |n: usize| {
        let (http, auth) = (http.clone(), auth.clone());
        async move {
            for _ in 0..n {
                assert_eq!(http.get(&auth).query(&query).send().await.unwrap().status(), 200);
            }
        }
    };
    open(vipps_sandbox::login::SWEEP_ABOVE + 1).await;
    let pending = || lock_sizes(&sandbox)[0];
    assert_eq!(pending(), vipps_sandbox::login::SWEEP_ABOVE + 1);
    sandbox.advance_clock(vipps_sandbox::login::CODE_LIFETIME + std::time::Duration::from_secs(1)).unwrap();
    open(1).await;
    assert_eq!(pending(), 1, "the expired pages were dropped");
}

fn lock_sizes(sandbox: &Sandbox) -> [usize; 4] {
    sandbox.state().login.lock().unwrap().sizes()
}
