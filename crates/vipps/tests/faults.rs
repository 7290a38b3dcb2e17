//! The fault suite: the runtime against hostile and broken servers.
//!
//! Each test runs a raw TCP server on loopback that answers as scripted (resets, truncated
//! and dripping bodies, redirects, answers that never come) and, where a redirect could
//! carry something away, a second listener that records whatever reaches it. Time-dependent
//! tests run on paused tokio time, so a "hang" costs no wall-clock time; each asserts that
//! the call ended exactly at its limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use vipps::vipps_core::{Limit, TransportKind};
use vipps::{Error, RetryPolicy, Timeouts, TokenEndpoint, Vipps, VippsBuilder};

const CLIENT_ID: &str = "client-id-4f1c";
const CLIENT_SECRET: &str = "client-secret-must-not-leak";
const SUBSCRIPTION_KEY: &str = "subscription-key-must-not-leak";
const TOKEN: &str = "eyJ0eXAi.token-must-not-leak.sig";

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    head: String,
}

/// What the server does with a request.
enum Act {
    /// Writes these bytes (a whole response) and keeps the connection.
    Raw(Vec<u8>),
    /// Writes these bytes, then closes the connection.
    RawThenClose(Vec<u8>),
    /// Closes with a TCP reset, answering nothing.
    Reset,
    /// Never answers.
    Hang,
    /// Writes `head`, then one byte of body every `every`, forever.
    Drip { head: String, every: Duration },
    /// Waits, then does the other thing.
    After(Duration, Box<Act>),
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Act {
    let mut raw = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    Act::Raw(raw.into_bytes())
}

fn json(status: u16, body: &str) -> Act {
    reply(status, &[("content-type", "application/json")], body)
}

fn token_body(token: &str, expires_in: &str) -> String {
    format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"{token}"}}"#)
}

/// The token endpoint's whole answer, as `/accesstoken/get` gives it.
fn token_ok() -> Act {
    json(
        200,
        &format!(
            r#"{{"token_type":"Bearer","expires_in":"3600","ext_expires_in":"0","expires_on":"1700000000","not_before":"1699996400","resource":"r","access_token":"{TOKEN}"}}"#
        ),
    )
}

type Script = dyn Fn(&Seen, usize) -> Act + Send + Sync;

/// A scripted server: `script(request, n)` decides the answer to the `n`th request (from 0)
/// to the same path.
struct Hostile {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    async fn start(script: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (s2, seen2) = (script.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, s2.clone(), seen2.clone()));
            }
        });
        Hostile { base, seen }
    }

    fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path.starts_with(path)).cloned().collect()
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(seen_now) = read_request(&mut stream, &mut buf).await else { return };
        let n = {
            let mut all = seen.lock().unwrap();
            let n = all.iter().filter(|s| s.path == seen_now.path).count();
            all.push(seen_now.clone());
            n
        };
        let mut act = script(&seen_now, n);
        loop {
            match act {
                Act::After(wait, next) => {
                    tokio::time::sleep(wait).await;
                    act = *next;
                }
                Act::Raw(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                    break;
                }
                Act::RawThenClose(bytes) => {
                    let _ = stream.write_all(&bytes).await;
                    return;
                }
                Act::Reset => {
                    #[allow(deprecated)]
                    let _ = stream.set_linger(Some(Duration::ZERO));
                    return;
                }
                Act::Hang => {
                    std::future::pending::<()>().await;
                }
                Act::Drip { head, every } => {
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    loop {
                        tokio::time::sleep(every).await;
                        if stream.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let mut chunk = [0u8; 8192];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + length);
            let mut words = head.split_whitespace();
            let method = words.next()?.to_owned();
            let path = words.next()?.to_owned();
            return Some(Seen { method, path, head });
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A client that never follows redirects and keeps idle connections (paused time would
/// otherwise expire them at once).
fn http() -> vipps::reqwest::Client {
    vipps::reqwest::Client::builder().redirect(vipps::reqwest::redirect::Policy::none()).pool_idle_timeout(None).build().unwrap()
}

fn builder(base: &str) -> VippsBuilder {
    Vipps::builder()
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .subscription_key(SUBSCRIPTION_KEY)
        .merchant_serial_number("123456")
        .base_url(base)
        .http_client(http())
}

async fn list(vipps: &Vipps) -> Result<usize, Error> {
    Ok(vipps.recurring().list_agreements().send().await?.into_inner().len())
}

/// A POST that takes no idempotency key (PSP force-approve).
async fn approve(vipps: &Vipps) -> Result<(), Error> {
    let body = vipps::psp::types::ForceApproveRequest::builder().customer_phone_number("12345678").token("t");
    vipps.psp().force_approve_payment().psp_transaction_id("tx1").body(body).send().await?;
    Ok(())
}

/// Every text an error shows: `Display` and `Debug` of it and of each source.
fn all_text(e: &Error) -> String {
    let mut out = format!("{e} {e:?}");
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push_str(&format!(" {s} {s:?}"));
        next = s.source();
    }
    out
}

fn assert_no_secret(text: &str) {
    for secret in [CLIENT_SECRET, SUBSCRIPTION_KEY, "token-must-not-leak", CLIENT_ID] {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
}

fn api_ok(seen: &Seen, _: usize) -> Act {
    match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        "/miami/v1/token" => json(200, &token_body(TOKEN, "900")),
        _ => json(200, "[]"),
    }
}

// ---------------------------------------------------------------------------------------
// Redirects: nothing is followed, nothing reaches the other host.

/// A listener that records what reaches it.
async fn recorder() -> Hostile {
    Hostile::start(|_, _| json(200, r#"{"access_token":"x","expires_in":3600}"#)).await
}

#[tokio::test]
async fn no_redirect_of_the_token_endpoint_is_followed() {
    for (status, endpoint) in [(307, TokenEndpoint::AccessTokenGet), (308, TokenEndpoint::AccessTokenGet), (307, TokenEndpoint::Miami), (302, TokenEndpoint::Miami)] {
        let elsewhere = recorder().await;
        let target = format!("{}/steal", elsewhere.base);
        let server = Hostile::start(move |_, _| reply(status, &[("location", &target)], "")).await;
        // The client the runtime builds itself.
        let vipps = Vipps::builder()
            .client_id(CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .subscription_key(SUBSCRIPTION_KEY)
            .base_url(&server.base)
            .token_endpoint(endpoint)
            .build()
            .unwrap();
        let err = list(&vipps).await.unwrap_err();
        let Error::TokenEndpoint { source: Some(inner), .. } = &err else { panic!("{err:?}") };
        assert!(matches!(&**inner, Error::Redirect { status: Some(s), location_host: Some(h) } if *s == status && h == "127.0.0.1"), "{inner:?}");
        assert!(elsewhere.all().is_empty(), "{status}: the credentials went to the redirect target: {:?}", elsewhere.all());
        assert_eq!(server.requests("/").len(), 1, "a redirect is not retried");
        assert_no_secret(&all_text(&err));
    }
}

#[tokio::test]
async fn no_redirect_of_an_api_call_is_followed() {
    for status in [301, 302, 303, 307, 308] {
        let elsewhere = recorder().await;
        let target = format!("{}/steal", elsewhere.base);
        let server = Hostile::start(move |seen, _| match seen.path.as_str() {
            "/accesstoken/get" => token_ok(),
            _ => reply(status, &[("location", &target)], ""),
        })
        .await;
        let vipps = Vipps::builder()
            .client_id(CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .subscription_key(SUBSCRIPTION_KEY)
            .merchant_serial_number("123456")
            .base_url(&server.base)
            .build()
            .unwrap();
        // A GET and a POST: a 301/302/303 would turn the POST into a GET and report success.
        let err = list(&vipps).await.unwrap_err();
        assert!(matches!(err, Error::Redirect { status: Some(s), .. } if s == status), "{err:?}");
        let err = approve(&vipps).await.unwrap_err();
        assert!(matches!(err, Error::Redirect { status: Some(s), .. } if s == status), "{err:?}");
        assert!(elsewhere.all().is_empty(), "{status}: the request went to the redirect target: {:?}", elsewhere.all());
    }
}

#[tokio::test]
async fn a_caller_client_that_follows_redirects_gets_an_error_not_a_success() {
    let elsewhere = recorder().await;
    let target = format!("{}/elsewhere", elsewhere.base);
    let server = Hostile::start(move |seen, _| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ => reply(302, &[("location", &target)], ""),
    })
    .await;
    let following = vipps::reqwest::Client::builder().pool_idle_timeout(None).build().unwrap();
    let vipps = builder(&server.base).http_client(following).build().unwrap();
    let err = approve(&vipps).await.unwrap_err();
    assert!(matches!(err, Error::Redirect { status: None, location_host: Some(_) }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Secrets in Debug and in errors.

#[tokio::test]
async fn the_raw_token_response_does_not_show_the_token() {
    let server = Hostile::start(api_ok).await;
    let vipps = builder(&server.base).build().unwrap();
    let response = vipps.access_token().fetch_access_token().send().await.unwrap();
    assert_eq!(response.access_token, TOKEN);
    let shown = format!("{response:?}");
    assert_no_secret(&format!("{shown} {:?}", response.into_inner()));
    let grant = vipps::accesstoken::types::TokenRequest { grant_type: vipps::accesstoken::types::TokenRequestGrantType::ClientCredentials };
    let response = vipps.access_token().fetch_token().body(grant).send().await.unwrap();
    assert_no_secret(&format!("{response:?}"));
}

#[tokio::test]
async fn malformed_token_responses_do_not_show_the_token() {
    for body in [
        token_body(TOKEN, "\"soon\""),
        token_body(TOKEN, "-1"),
        token_body(TOKEN, "[1]"),
        format!(r#"{{"access_token":"{TOKEN}"}}"#),
        format!(r#"{{"access_token":["{TOKEN}"],"expires_in":1}}"#),
        format!(r#"{{"access_token":"{TOKEN}\n","expires_in":1}}"#),
        format!(r#"{{"access_token":"{TOKEN}","expires_in":1"#),
    ] {
        let server = Hostile::start(move |seen, _| match seen.path.as_str() {
            "/accesstoken/get" => json(200, &body),
            _ => json(200, "[]"),
        })
        .await;
        let vipps = builder(&server.base).build().unwrap();
        let err = list(&vipps).await.unwrap_err();
        assert!(matches!(&err, Error::TokenEndpoint { source: Some(s), .. } if matches!(**s, Error::MalformedResponse { .. })), "{err:?}");
        assert_no_secret(&all_text(&err));
    }
}

// ---------------------------------------------------------------------------------------
// Hangs: the whole-call limit covers everything a call waits for.

fn limits(attempt: u64, call: u64) -> Timeouts {
    Timeouts { connect: None, attempt: Some(Duration::from_secs(attempt)), call: Some(Duration::from_secs(call)) }
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_never_answers_ends_the_call_at_its_limit() {
    let server = Hostile::start(|seen, _| if seen.path == "/accesstoken/get" { Act::Hang } else { json(200, "[]") }).await;
    let vipps = builder(&server.base).timeouts(limits(30, 5)).build().unwrap();
    let started = Instant::now();
    let err = list(&vipps).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5), "{err:?}");
    assert!(matches!(err, Error::Timeout { limit: Limit::Call, after } if after == Duration::from_secs(5)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_caller_waiting_on_another_callers_token_request_ends_at_its_own_limit() {
    let server = Hostile::start(|seen, _| if seen.path == "/accesstoken/get" { Act::Hang } else { json(200, "[]") }).await;
    let vipps = builder(&server.base).timeouts(limits(30, 5)).build().unwrap();
    let first = tokio::spawn({
        let vipps = vipps.clone();
        async move { list(&vipps).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let err = list(&vipps).await.unwrap_err();
    // The token request itself has the call limit (5 s from its start): the second caller,
    // 2 s in, gets its failure after 3 s, well within its own limit.
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(matches!(&err, Error::TokenEndpoint { source: Some(_), .. }) && err.is_timeout(), "{err:?}");
    assert!(first.await.unwrap().unwrap_err().is_timeout());
    assert_eq!(server.requests("/accesstoken/get").len(), 1, "one token request for both");
}

#[tokio::test(start_paused = true)]
async fn a_failed_token_request_is_one_outcome_for_all_its_waiters() {
    // The token endpoint refuses after 3 s; 20 calls wait on that one request.
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => Act::After(Duration::from_secs(3), Box::new(json(400, r#"{"error":"invalid_client"}"#))),
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).timeouts(limits(30, 60)).build().unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let vipps = vipps.clone();
            tokio::spawn(async move { list(&vipps).await })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::TokenEndpoint { status: Some(400), .. }), "{err:?}");
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3), "all waiters got the one failure together");
    assert_eq!(server.requests("/accesstoken/get").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dripping_body_ends_at_the_attempt_limit() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ => Act::Drip { head: "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ncontent-type: application/json\r\n\r\n[".into(), every: Duration::from_millis(500) },
    })
    .await;
    let vipps = builder(&server.base).timeouts(limits(4, 60)).retry_policy(RetryPolicy::none()).build().unwrap();
    list(&vipps).await.unwrap_err();
    let started = Instant::now();
    let err = list(&vipps).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert!(matches!(err, Error::Timeout { limit: Limit::Attempt, .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dripping_token_body_ends_at_the_call_limit() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => Act::Drip { head: "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{".into(), every: Duration::from_millis(100) },
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).timeouts(Timeouts { connect: None, attempt: None, call: Some(Duration::from_secs(7)) }).build().unwrap();
    let started = Instant::now();
    let err = list(&vipps).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_and_backoff_stay_within_the_call_limit() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ => Act::After(Duration::from_secs(2), Box::new(reply(503, &[("retry-after", "1")], ""))),
    })
    .await;
    let policy = RetryPolicy { max_attempts: 100, ..RetryPolicy::default() };
    let vipps = builder(&server.base).timeouts(limits(30, 10)).retry_policy(policy).build().unwrap();
    let started = Instant::now();
    let err = list(&vipps).await.unwrap_err();
    assert!(started.elapsed() <= Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(err, Error::Api { status: 503, .. } | Error::Timeout { limit: Limit::Call, .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Panics: absurd values are clamped or refused.

#[tokio::test(start_paused = true)]
async fn huge_token_lifetimes_do_not_panic() {
    for expires_in in ["9223372036854775808", "18446744073709551615", "\"99999999999999999999999\"", "1e308"] {
        let server = Hostile::start(move |seen, _| match seen.path.as_str() {
            "/accesstoken/get" => json(200, &token_body(TOKEN, expires_in)),
            _ => json(200, "[]"),
        })
        .await;
        let vipps = builder(&server.base).build().unwrap();
        assert_eq!(list(&vipps).await.unwrap(), 0, "{expires_in}");
        tokio::time::advance(Duration::from_secs(24 * 3600 - 61)).await;
        assert_eq!(list(&vipps).await.unwrap(), 0, "{expires_in}");
        assert_eq!(server.requests("/accesstoken/get").len(), 1, "{expires_in}");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(list(&vipps).await.unwrap(), 0, "{expires_in}");
        assert_eq!(server.requests("/accesstoken/get").len(), 2, "{expires_in}: a lifetime is capped at 24 h");
    }
}

#[tokio::test(start_paused = true)]
async fn extreme_configuration_values_are_refused_or_saturate() {
    let server = Hostile::start(|seen, n| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ if n == 0 => reply(503, &[("retry-after", "18446744073709551615")], ""),
        _ => json(200, "[]"),
    })
    .await;
    for zero in [
        Timeouts { connect: Some(Duration::ZERO), ..Timeouts::default() },
        Timeouts { attempt: Some(Duration::ZERO), ..Timeouts::default() },
        Timeouts { call: Some(Duration::ZERO), ..Timeouts::default() },
    ] {
        assert!(matches!(builder(&server.base).timeouts(zero).build(), Err(Error::Config { .. })));
    }
    let no_attempts = RetryPolicy { max_attempts: 0, ..RetryPolicy::default() };
    assert!(matches!(builder(&server.base).retry_policy(no_attempts).build(), Err(Error::Config { .. })));
    let forever = Timeouts { connect: Some(Duration::MAX), attempt: Some(Duration::MAX), call: Some(Duration::MAX) };
    let extreme = RetryPolicy { max_attempts: u32::MAX, initial_backoff: Duration::MAX, max_backoff: Duration::MAX, max_retry_after: Duration::MAX };
    let vipps = builder(&server.base).timeouts(forever).retry_policy(extreme).token_refresh_margin(Duration::MAX).build().unwrap();
    // The server asks for a wait of 2^64 s, which this policy accepts: the call waits, no panic.
    let call = tokio::spawn(async move { list(&vipps).await });
    tokio::time::sleep(Duration::from_secs(365 * 86400)).await;
    assert!(!call.is_finished());
    call.abort();
    // With a call limit the same answer ends at the limit instead.
    let vipps = builder(&server.base).timeouts(limits(30, 20)).retry_policy(extreme).build().unwrap();
    let started = Instant::now();
    let err = list(&vipps).await;
    assert!(started.elapsed() <= Duration::from_secs(20), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Nothing is sent twice unless it is safe.

#[tokio::test]
async fn a_post_without_a_key_is_not_resent_after_a_401() {
    let server = Hostile::start(|seen, n| match seen.path.as_str() {
        "/accesstoken/get" => json(200, &token_body(&format!("tok-{n}"), "3600")),
        _ if n == 0 => json(401, r#"{"title":"Unauthorized","detail":"token expired"}"#),
        _ => json(200, "{}"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    let err = approve(&vipps).await.unwrap_err();
    assert!(matches!(&err, Error::Authentication { status: Some(401), .. }), "{err:?}");
    let sent = server.requests("/psp/");
    assert_eq!(sent.len(), 1, "the POST was sent once");
    assert_eq!(sent[0].method, "POST");
    // The refused token was forgotten: the next call gets a new one.
    approve(&vipps).await.unwrap();
    assert_eq!(server.requests("/accesstoken/get").len(), 2);
    let sent = server.requests("/psp/");
    assert!(sent[1].head.to_ascii_lowercase().contains("bearer tok-1"), "{}", sent[1].head);
}

#[tokio::test]
async fn a_get_is_resent_once_with_a_new_token_after_a_401() {
    let server = Hostile::start(|seen, n| match seen.path.as_str() {
        "/accesstoken/get" => json(200, &token_body(&format!("tok-{n}"), "3600")),
        _ if n == 0 => json(401, "{}"),
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(server.requests("/recurring/").len(), 2);
}

// ---------------------------------------------------------------------------------------
// Errors keep what happened.

#[tokio::test(start_paused = true)]
async fn a_failed_token_request_keeps_its_status_and_problem() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => reply(500, &[("content-type", "application/problem+json")], r#"{"title":"Internal","detail":"database down"}"#),
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    match &err {
        Error::TokenEndpoint { status: Some(500), problem: Some(p), source: None } => assert_eq!(p.detail.as_deref(), Some("database down")),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "the token endpoint answered HTTP 500: Internal: database down");
    assert_eq!(server.requests("/accesstoken/get").len(), 3, "a 5xx of the token endpoint is retried (3 attempts)");
}

#[tokio::test(start_paused = true)]
async fn the_token_endpoint_is_retried_on_5xx_429_and_resets() {
    let server = Hostile::start(|seen, n| match (seen.path.as_str(), n) {
        ("/accesstoken/get", 0) => Act::Reset,
        ("/accesstoken/get", 1) => reply(429, &[("retry-after", "2")], ""),
        ("/accesstoken/get", 2) => reply(502, &[], "<html>bad gateway</html>"),
        ("/accesstoken/get", _) => token_ok(),
        _ => json(200, "[]"),
    })
    .await;
    let policy = RetryPolicy { max_attempts: 4, ..RetryPolicy::default() };
    let vipps = builder(&server.base).retry_policy(policy).build().unwrap();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(server.requests("/accesstoken/get").len(), 4);
}

#[tokio::test]
async fn transport_errors_say_which_step_failed_and_keep_their_source() {
    // Nothing listens on this port.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let vipps = builder(&base).retry_policy(RetryPolicy::none()).build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    let Error::TokenEndpoint { source: Some(inner), .. } = &err else { panic!("{err:?}") };
    assert!(matches!(&**inner, Error::Transport { kind: TransportKind::Connect, .. }), "{inner:?}");
    assert!(std::error::Error::source(&**inner).is_some(), "the reqwest error is kept");
    // An https URL answered by a server that speaks plain HTTP at once: the TLS handshake fails.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_base = format!("https://{}", plain.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = plain.accept().await {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let vipps = Vipps::builder().client_id(CLIENT_ID).client_secret(CLIENT_SECRET).subscription_key(SUBSCRIPTION_KEY).base_url(&tls_base).retry_policy(RetryPolicy::none()).build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    let Error::TokenEndpoint { source: Some(inner), .. } = &err else { panic!("{err:?}") };
    assert!(matches!(&**inner, Error::Transport { kind: TransportKind::Tls, .. }), "{inner:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_request_is_an_attempt_timeout_and_messages_do_not_repeat() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ => Act::Hang,
    })
    .await;
    let vipps = builder(&server.base).timeouts(limits(3, 60)).retry_policy(RetryPolicy::none()).build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { limit: Limit::Attempt, after } if after == Duration::from_secs(3)), "{err:?}");
    assert_eq!(err.to_string(), "the attempt time limit (3s) ran out");
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_an_error_of_the_token_endpoint_and_not_cached() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => json(200, r#"{"access_token":"abc\u0001def","expires_in":3600}"#),
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).retry_policy(RetryPolicy::none()).build().unwrap();
    for _ in 0..2 {
        let err = list(&vipps).await.unwrap_err();
        assert!(matches!(&err, Error::TokenEndpoint { source: Some(s), .. } if matches!(**s, Error::MalformedResponse { .. })), "{err:?}");
    }
    assert_eq!(server.requests("/accesstoken/get").len(), 2, "the bad token was not cached");
    assert!(server.requests("/recurring/").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_short_lived_token_is_cached_for_half_its_lifetime() {
    let server = Hostile::start(|seen, n| match seen.path.as_str() {
        "/accesstoken/get" => json(200, &token_body(&format!("tok-{n}"), "\"30\"")),
        _ => json(200, "[]"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    // 1,000 calls spread over 10 minutes.
    for _ in 0..1000 {
        list(&vipps).await.unwrap();
        tokio::time::advance(Duration::from_millis(600)).await;
    }
    let fetched = server.requests("/accesstoken/get").len();
    println!("token requests for 1000 calls over 10 minutes with a 30 s token: {fetched}");
    assert_eq!(fetched, 40, "one per 15 s");
}

#[tokio::test]
async fn a_response_larger_than_the_limit_is_refused() {
    let big = format!("[{}]", vec!["\"abcdefghij\""; 500].join(","));
    let server = Hostile::start(move |seen, n| match (seen.path.as_str(), n) {
        ("/accesstoken/get", _) => token_ok(),
        (_, 0) => json(200, &big),
        // A body whose length is not announced, sent in pieces.
        (_, _) => Act::RawThenClose(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{big}").into_bytes()),
    })
    .await;
    let vipps = builder(&server.base).max_response_size(4096).build().unwrap();
    for _ in 0..2 {
        let err = list(&vipps).await.unwrap_err();
        assert!(matches!(err, Error::ResponseTooLarge { limit: 4096 }), "{err:?}");
    }
    assert!(matches!(builder(&server.base).max_response_size(10).build(), Err(Error::Config { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_broken_body_is_retried_for_a_get_and_not_for_a_post() {
    let server = Hostile::start(|seen, n| match (seen.path.as_str(), n) {
        ("/accesstoken/get", _) => token_ok(),
        (_, 0) => Act::RawThenClose(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\ncontent-type: application/json\r\n\r\n[1,2".to_vec()),
        ("/recurring/v3/agreements", _) => json(200, "[]"),
        _ => json(200, "{}"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(server.requests("/recurring/").len(), 2);
    let err = approve(&vipps).await.unwrap_err();
    assert!(matches!(err, Error::Transport { kind: TransportKind::Body, .. }), "{err:?}");
    assert_eq!(server.requests("/psp/").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_before_any_answer_is_retried_only_when_safe() {
    let server = Hostile::start(|seen, n| match (seen.path.as_str(), n) {
        ("/accesstoken/get", _) => token_ok(),
        (_, 0) => Act::Reset,
        ("/recurring/v3/agreements", _) => json(200, "[]"),
        _ => json(200, "{}"),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    assert_eq!(list(&vipps).await.unwrap(), 0);
    assert_eq!(server.requests("/recurring/").len(), 2);
    // The reset came after the POST reached the server: it may have acted on it.
    assert!(approve(&vipps).await.is_err());
    assert_eq!(server.requests("/psp/").len(), 1);
}

#[tokio::test]
async fn a_response_that_does_not_decode_names_the_json_path() {
    let server = Hostile::start(|seen, _| match seen.path.as_str() {
        "/accesstoken/get" => token_ok(),
        _ => json(200, r#"[{"id": 5}]"#),
    })
    .await;
    let vipps = builder(&server.base).build().unwrap();
    let err = list(&vipps).await.unwrap_err();
    match &err {
        Error::MalformedResponse { status: Some(200), path: Some(path), .. } => assert!(path.starts_with("[0]"), "{path}"),
        other => panic!("{other:?}"),
    }
}
