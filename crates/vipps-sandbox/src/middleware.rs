//! What every request goes through, outermost first: problem+json for every error answer,
//! the body read in full under one limit, the guard of the `/_sandbox/` controls, the call
//! counter and injected faults, the credential checks, then `Idempotency-Key` replay.
//!
//! # Body limit
//!
//! A request body may be at most [`MAX_BODY_BYTES`] (4 MiB, enough for a 2 MB image in
//! base64), for every route, with or without an `Idempotency-Key`. A larger one is a
//! `413 application/problem+json`; a body that cannot be read (a broken chunked encoding, a
//! connection that ends early) is a `400`.
//!
//! # Idempotency
//!
//! As the Vipps MobilePay APIs document it, an `Idempotency-Key` applies to state-changing
//! requests: `POST`, `PUT`, `PATCH` and `DELETE`. On any other method it is ignored (never
//! stored, never replayed). A key is scoped to the merchant (`Merchant-Serial-Number`), the
//! method and the path; it is bound to the query and the body it first came with (by their
//! SHA-256). The same key with the same query and body gets the stored answer again: the
//! same status, headers and body, marked `Idempotent-Replayed: true`, and nothing changes.
//! The same key with another query or body is a 409, and so is a second request sent while
//! the first one with that key is still being handled. Only 2xx answers are stored; after an
//! error the key may be used again.
//!
//! Answers are kept for [`IDEMPOTENCY_RETENTION`] (24 hours) by the sandbox clock (so
//! `advance_clock` ages them too), at most [`Config::idempotency_capacity`]
//! ([`IDEMPOTENCY_CAPACITY`], 10,000) of them and [`IDEMPOTENCY_MAX_BYTES`] (64 MiB) in all;
//! the oldest go first. A key whose answer was dropped is new again.
//!
//! [`IDEMPOTENCY_RETENTION`]: crate::state::IDEMPOTENCY_RETENTION
//! [`IDEMPOTENCY_CAPACITY`]: crate::state::IDEMPOTENCY_CAPACITY
//! [`IDEMPOTENCY_MAX_BYTES`]: crate::state::IDEMPOTENCY_MAX_BYTES
//! [`Config::idempotency_capacity`]: crate::state::Config::idempotency_capacity

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

use crate::problem::ApiError;
use crate::state::{lock, AppState, Fingerprint, IdempotencyId, Idempotent, StoredAnswer, TokenKind};

/// The largest request body the sandbox reads: 4 MiB. A larger one is a 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

fn is_token_path(path: &str) -> bool {
    path == "/accesstoken/get" || path == "/miami/v1/token"
}

pub(crate) fn is_control_path(path: &str) -> bool {
    path.starts_with("/_sandbox/")
}

/// Reads the whole body under [`MAX_BODY_BYTES`] before anything else looks at it, so that
/// every route answers a body that is too large, or broken, the same way.
pub(crate) async fn read_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) if is_length_limit(&e) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            format!("the body is larger than the sandbox's limit of {MAX_BODY_BYTES} bytes"),
        )
        .into_response(),
        Err(e) => ApiError::bad_request(format!("could not read the body: {e}")).into_response(),
    }
}

/// Whether reading a body failed because it was over the limit (rather than broken).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Counts calls, adds the configured latency, and answers with an injected failure when one
/// is planned. Token and control calls and the landing pages are never failed or delayed.
pub(crate) async fn faults(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.calls.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path();
    let public = is_control_path(path) || is_token_path(path) || crate::landing::is_landing_path(path);
    if public || crate::qr::is_public_path(path) || path == crate::checkout::LANDING_PATH {
        return next.run(request).await;
    }
    let (latency, failure) = {
        let mut plan = lock(&state.faults);
        let failure = match plan.fail_next {
            Some((n, status)) if n > 0 => {
                plan.fail_next = if n > 1 { Some((n - 1, status)) } else { None };
                Some(status)
            }
            _ => None,
        };
        (plan.latency, failure)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = failure {
        let title = status.canonical_reason().unwrap_or("Error");
        return ApiError::new(status, title, "a fault injected by the sandbox").into_response();
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header; the scheme in any case.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Checks the bearer token and `Ocp-Apim-Subscription-Key` on every API call. A token from
/// `/miami/v1/token` needs no subscription key (one that is sent must still be right). Checkout
/// calls carry client headers instead ([`crate::checkout::authenticate`]); its landing page,
/// the customer's, needs nothing (nor is it failed by injected faults).
pub(crate) async fn credentials(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // Login and Userinfo's user-token endpoint check their own credentials (client
    // authentication, or the user's token).
    let own = crate::login::is_own_auth_path(path) || path == crate::userinfo::USER_PATH;
    let public = is_control_path(path) || is_token_path(path) || crate::landing::is_landing_path(path);
    if public || crate::qr::is_public_path(path) || path == crate::checkout::LANDING_PATH || own {
        return next.run(request).await;
    }
    // Checkout authenticates with the client headers instead of a token.
    if path.starts_with(crate::checkout::API_PREFIX) {
        return match crate::checkout::authenticate(&state, request.headers()) {
            Ok(()) => next.run(request).await,
            Err(e) => e.into_response(),
        };
    }
    let headers = request.headers();
    let key = headers.get("ocp-apim-subscription-key").map(|v| v.to_str().unwrap_or_default());
    let key_ok = key == Some(state.config.credentials.subscription_key.as_str());
    let Some(token) = bearer(headers) else {
        return ApiError::unauthorized("a bearer token is required").into_response();
    };
    match state.valid_token(token) {
        None => ApiError::unauthorized("the access token is expired or was not issued by this service").into_response(),
        Some(TokenKind::Miami) if key.is_none() || key_ok => next.run(request).await,
        Some(_) if !key_ok => {
            ApiError::unauthorized("a valid Ocp-Apim-Subscription-Key header is required").into_response()
        }
        Some(_) => next.run(request).await,
    }
}

/// Makes every error answer `application/problem+json` and fills in `instance` (the request
/// path), as the real APIs do. Errors the router or axum produce themselves (404, 405 with its
/// `Allow` header, a rejected extractor) come as plain text or with no body; they are turned
/// into problems with the same status and headers.
pub(crate) async fn problems(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|ct| ct.as_bytes().to_vec());
    let is_problem = content_type.as_deref().is_some_and(|ct| ct.starts_with(b"application/problem+json"));
    let is_plain = content_type.as_deref().is_none_or(|ct| ct.starts_with(b"text/plain"));
    if !is_problem && !(is_plain && (status.is_client_error() || status.is_server_error())) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Our own answers are in memory; there is no limit to enforce here.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", "the answer could not be read")
            .into_response();
    };
    let body = if is_problem {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Response::from_parts(parts, Body::from(bytes)),
        }
    } else {
        let title = status.canonical_reason().unwrap_or("Error");
        let detail = match std::str::from_utf8(&bytes).map(str::trim) {
            _ if status == StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
            Ok(text) if !text.is_empty() && text.len() <= 1000 => text.to_owned(),
            _ => title.to_owned(),
        };
        match ApiError::new(status, title, detail).body() {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    };
    let mut body = body;
    body.entry("instance").or_insert(serde_json::Value::String(path));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    Response::from_parts(parts, Body::from(serde_json::Value::Object(body).to_string()))
}

/// Whether a method changes state, so that an `Idempotency-Key` applies to it.
fn is_state_changing(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// What a request asked for beyond its key: SHA-256 of its query and body.
fn fingerprint(query: Option<&str>, body: &[u8]) -> Fingerprint {
    let mut hash = Sha256::new();
    match query {
        Some(q) => {
            hash.update([1]);
            hash.update((q.len() as u64).to_be_bytes());
            hash.update(q.as_bytes());
        }
        None => hash.update([0]),
    }
    hash.update(body);
    hash.finalize().into()
}

/// Headers that describe one transfer of an answer, not the answer: not stored for replay.
fn is_transfer_header(name: &header::HeaderName) -> bool {
    [header::CONTENT_LENGTH, header::DATE, header::TRANSFER_ENCODING, header::CONNECTION].contains(name)
}

/// Stores the answer to a successful state-changing request that carries an
/// `Idempotency-Key`, and replays it; see the module documentation for the rules.
pub(crate) async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_state_changing(request.method()) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return next.run(request).await;
    };
    let scope = request
        .headers()
        .get("merchant-serial-number")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let id: IdempotencyId = (scope, request.method().to_string(), request.uri().path().to_owned(), key);
    let (parts, body) = request.into_parts();
    // `read_body` has read the body under the limit already; this only takes it back.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return ApiError::bad_request(format!("could not read the body: {e}")).into_response(),
    };
    let asked = fingerprint(parts.uri.query(), &body);
    {
        let mut store = lock(&state.idempotency);
        match store.get(&id, state.now()) {
            Some(Idempotent::Done(stored)) if stored.fingerprint != asked => {
                return ApiError::conflict("this Idempotency-Key was used before with a different request").into_response()
            }
            Some(Idempotent::Done(stored)) => {
                let mut response = Response::new(Body::from(stored.body.clone()));
                *response.status_mut() = stored.status;
                *response.headers_mut() = stored.headers.clone();
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return response;
            }
            Some(Idempotent::InFlight(_)) => {
                return ApiError::conflict("a request with this Idempotency-Key is still being processed").into_response()
            }
            None => store.begin(id.clone(), asked),
        }
    }
    // From here the key is marked in flight; the guard clears the mark however this ends
    // (an error answer, or the client going away and the future being dropped).
    let mut guard = InFlight { state: &state, id: Some(id) };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, response_body) = response.into_parts();
    // The answer is our own, in memory: read it whole, however large.
    let Ok(response_body) = axum::body::to_bytes(response_body, usize::MAX).await else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", "the answer could not be read")
            .into_response();
    };
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if !is_transfer_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    // An owned copy of exactly the answer: nothing shared with buffers larger than it.
    let stored = bytes::Bytes::copy_from_slice(&response_body);
    let answer = StoredAnswer::new(asked, state.now(), parts.status, headers, stored);
    if let Some(id) = guard.id.take() {
        lock(&state.idempotency).store(id, answer);
    }
    Response::from_parts(parts, Body::from(response_body))
}

/// Removes an in-flight mark that was not replaced by a stored answer.
struct InFlight<'a> {
    state: &'a AppState,
    id: Option<IdempotencyId>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            lock(&self.state.idempotency).abandon(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use axum::middleware::from_fn_with_state;
    use axum::routing::post;
    use axum::Router;

    use super::*;
    use crate::state::{Config, Shared};

    /// A server whose one route counts how often it ran and answers with that count, behind
    /// the sandbox's middleware.
    async fn serve() -> (String, AppState, Arc<AtomicU32>) {
        let (url, state, runs, _) = serve_with_gate().await;
        (url, state, runs)
    }

    /// [`serve`], plus a `/gated` route that answers only once the test adds a permit.
    async fn serve_with_gate() -> (String, AppState, Arc<AtomicU32>, Arc<tokio::sync::Semaphore>) {
        let state: AppState = Arc::new(Shared::new(Config::default()));
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let held = gate.clone();
        let app = Router::new()
            .route(
                "/gated",
                post(move || {
                    let held = held.clone();
                    async move {
                        held.acquire().await.unwrap().forget();
                        StatusCode::CREATED
                    }
                }),
            )
            .route(
                "/count",
                post(move |body: bytes::Bytes| {
                    let counter = counter.clone();
                    async move {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        (StatusCode::CREATED, format!("{{\"run\":{n},\"len\":{}}}", body.len()))
                    }
                }),
            )
            .route(
                "/located",
                post(|| async {
                    let id = uuid::Uuid::new_v4().to_string();
                    let headers = [(header::LOCATION, format!("/things/{id}")), (header::ETAG, format!("\"{id}\""))];
                    (StatusCode::ACCEPTED, headers, id)
                }),
            )
            .route("/large", post(|| async { (StatusCode::CREATED, "x".repeat(5 * 1024 * 1024 + 1)) }))
            .merge(crate::accesstoken::routes())
            .layer(from_fn_with_state(state.clone(), idempotency))
            .layer(from_fn_with_state(state.clone(), credentials))
            .layer(from_fn_with_state(state.clone(), faults))
            .layer(axum::middleware::from_fn(read_body))
            .layer(axum::middleware::from_fn(problems))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, state, runs, gate)
    }

    fn post_count(url: &str, state: &AppState, token: &str, key: Option<&str>, body: &'static str) -> reqwest::RequestBuilder {
        post_to(url, "/count", state, token, key, body)
    }

    /// An authenticated POST to one of the test routes.
    fn post_to(
        url: &str,
        route: &str,
        state: &AppState,
        token: &str,
        key: Option<&str>,
        body: &'static str,
    ) -> reqwest::RequestBuilder {
        let mut r = reqwest::Client::new()
            .post(format!("{url}{route}"))
            .bearer_auth(token)
            .header("Ocp-Apim-Subscription-Key", &state.config.credentials.subscription_key)
            .header("Merchant-Serial-Number", "123456")
            .body(body);
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        r
    }

    #[tokio::test]
    async fn credentials_are_checked_before_the_handler_runs() {
        let (url, state, runs) = serve().await;
        // No token, a token the sandbox never issued, the wrong subscription key: all 401.
        let none = reqwest::Client::new().post(format!("{url}/count")).send().await.unwrap();
        assert_eq!(none.status(), 401);
        assert_eq!(post_count(&url, &state, "made-up", None, "{}").send().await.unwrap().status(), 401);
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let wrong_key = reqwest::Client::new()
            .post(format!("{url}/count"))
            .bearer_auth(&token)
            .header("Ocp-Apim-Subscription-Key", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_key.status(), 401);
        assert_eq!(wrong_key.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(post_count(&url, &state, &token, None, "{}").send().await.unwrap().status(), 201);
        state.expire_tokens();
        assert_eq!(post_count(&url, &state, &token, None, "{}").send().await.unwrap().status(), 401);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn miami_tokens_need_no_subscription_key_and_problems_name_the_instance() {
        let (url, state, runs) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::Miami);
        let call = |key: Option<&str>| {
            let mut r = reqwest::Client::new().post(format!("{url}/count")).bearer_auth(&token);
            if let Some(key) = key {
                r = r.header("Ocp-Apim-Subscription-Key", key);
            }
            r.send()
        };
        assert_eq!(call(None).await.unwrap().status(), 201);
        assert_eq!(call(Some(&state.config.credentials.subscription_key)).await.unwrap().status(), 201);
        let wrong = call(Some("wrong")).await.unwrap();
        assert_eq!(wrong.status(), 401);
        let problem: serde_json::Value = wrong.json().await.unwrap();
        assert_eq!(problem["instance"], "/count");
        assert_eq!(problem["status"], 401);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_same_key_and_body_replay_and_another_body_conflicts() {
        let (url, state, runs) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let first = post_count(&url, &state, &token, Some("k-1"), "{\"a\":1}").send().await.unwrap();
        assert_eq!(first.status(), 201);
        let first = first.text().await.unwrap();
        let again = post_count(&url, &state, &token, Some("k-1"), "{\"a\":1}").send().await.unwrap();
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.text().await.unwrap(), first);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "a replay must not run the handler");
        let other = post_count(&url, &state, &token, Some("k-1"), "{\"a\":2}").send().await.unwrap();
        assert_eq!(other.status(), 409);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Another key runs again.
        assert_eq!(post_count(&url, &state, &token, Some("k-2"), "{\"a\":1}").send().await.unwrap().status(), 201);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_query_is_part_of_what_a_key_is_bound_to() {
        let (url, state, runs) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let first = post_to(&url, "/count?page=1", &state, &token, Some("q"), "{}").send().await.unwrap();
        assert_eq!(first.status(), 201);
        let other = post_to(&url, "/count?page=2", &state, &token, Some("q"), "{}").send().await.unwrap();
        assert_eq!(other.status(), 409, "another query under the same key is another request");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let again = post_to(&url, "/count?page=1", &state, &token, Some("q"), "{}").send().await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true");
    }

    #[tokio::test]
    async fn a_replay_repeats_status_headers_and_body() {
        let (url, state, _) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let first = post_to(&url, "/located", &state, &token, Some("h"), "{}").send().await.unwrap();
        let again = post_to(&url, "/located", &state, &token, Some("h"), "{}").send().await.unwrap();
        assert_eq!(again.status(), first.status());
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        for name in [header::LOCATION, header::ETAG, header::CONTENT_TYPE] {
            assert_eq!(again.headers().get(&name), first.headers().get(&name), "{name}");
        }
        assert_eq!(again.text().await.unwrap(), first.text().await.unwrap());
    }

    #[tokio::test]
    async fn an_answer_over_4_mb_is_served_and_replayed_whole() {
        let (url, state, _) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        for replay in [false, true] {
            let r = post_to(&url, "/large", &state, &token, Some("large"), "{}").send().await.unwrap();
            assert_eq!(r.status(), 201);
            assert_eq!(r.headers().contains_key("idempotent-replayed"), replay);
            assert_eq!(r.bytes().await.unwrap().len(), 5 * 1024 * 1024 + 1);
        }
    }

    #[tokio::test]
    async fn a_key_still_in_flight_is_a_conflict_not_a_second_run() {
        let (url, state, _, gate) = serve_with_gate().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let send = || post_to(&url, "/gated", &state, &token, Some("slow"), "{}").send();
        let first = tokio::spawn(send());
        // Wait until the first request holds the key.
        while !lock(&state.idempotency).values().any(|e| matches!(e, Idempotent::InFlight(_))) {
            tokio::task::yield_now().await;
        }
        let second = send().await.unwrap();
        assert_eq!(second.status(), 409);
        let problem: serde_json::Value = second.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("still being processed"), "{problem}");
        gate.add_permits(1);
        assert_eq!(first.await.unwrap().unwrap().status(), 201);
        let third = send().await.unwrap();
        assert_eq!(third.status(), 201);
        assert_eq!(third.headers()["idempotent-replayed"], "true");
    }

    #[tokio::test]
    async fn a_request_dropped_in_flight_frees_its_key() {
        let (url, state, _, gate) = serve_with_gate().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        let send = || post_to(&url, "/gated", &state, &token, Some("dropped"), "{}").send();
        let first = tokio::spawn(send());
        while lock(&state.idempotency).is_empty() {
            tokio::task::yield_now().await;
        }
        // The client goes away: the server drops the handler and must forget the key.
        first.abort();
        while !lock(&state.idempotency).is_empty() {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        assert_eq!(send().await.unwrap().status(), 201);
    }

    #[tokio::test]
    async fn the_clock_refuses_steps_it_cannot_take_and_expires_tokens() {
        let state: AppState = Arc::new(Shared::new(Config::default()));
        let token = state.issue_token(std::time::Duration::from_secs(3600), TokenKind::AccessToken);
        let before = state.now();
        assert!(state.advance_clock(chrono::Duration::days(40_000)).is_err());
        assert!(state.advance_clock(chrono::Duration::seconds(-1)).is_err());
        assert!(state.now() - before < chrono::Duration::minutes(1), "a refused step changes nothing");
        assert!(state.token_valid(&token));
        let after = state.advance_clock(chrono::Duration::hours(2)).unwrap();
        assert!(after - before >= chrono::Duration::hours(2));
        assert!(!state.token_valid(&token), "tokens expire by the sandbox clock");
    }

    #[tokio::test]
    async fn injected_failures_are_not_stored_and_leave_the_key_usable() {
        let (url, state, runs) = serve().await;
        let token = state.issue_token(std::time::Duration::from_secs(60), TokenKind::AccessToken);
        lock(&state.faults).fail_next = Some((2, StatusCode::SERVICE_UNAVAILABLE));
        for _ in 0..2 {
            let r = post_count(&url, &state, &token, Some("k"), "{}").send().await.unwrap();
            assert_eq!(r.status(), 503);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["status"], 503);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(post_count(&url, &state, &token, Some("k"), "{}").send().await.unwrap().status(), 201);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Token calls are never failed.
        lock(&state.faults).fail_next = Some((1, StatusCode::SERVICE_UNAVAILABLE));
        let c = &state.config.credentials;
        let t = reqwest::Client::new()
            .post(format!("{url}/accesstoken/get"))
            .header("client_id", &c.client_id)
            .header("client_secret", &c.client_secret)
            .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
            .send()
            .await
            .unwrap();
        assert_eq!(t.status(), 200);
        let t: serde_json::Value = t.json().await.unwrap();
        assert_eq!(t["expires_in"], "3600");
        assert!(state.token_valid(t["access_token"].as_str().unwrap()));
    }

    #[tokio::test]
    async fn token_endpoints_refuse_wrong_credentials() {
        let (url, state, _) = serve().await;
        let c = &state.config.credentials;
        let wrong = reqwest::Client::new()
            .post(format!("{url}/accesstoken/get"))
            .header("client_id", &c.client_id)
            .header("client_secret", "nope")
            .header("Ocp-Apim-Subscription-Key", &c.subscription_key)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let miami = reqwest::Client::new()
            .post(format!("{url}/miami/v1/token"))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(miami.status(), 200);
        let body: serde_json::Value = miami.json().await.unwrap();
        assert_eq!(body["expires_in"], 900);
        let bad_grant = reqwest::Client::new()
            .post(format!("{url}/miami/v1/token"))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad_grant.status(), 400);
        let problem: serde_json::Value = bad_grant.json().await.unwrap();
        assert_eq!(problem["extraDetails"][0]["name"], "grant_type");
    }
}
