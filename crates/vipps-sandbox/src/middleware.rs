//! What every request goes through, outermost first: the call counter and injected faults,
//! then the credential checks, then `Idempotency-Key` replay.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;

use crate::problem::ApiError;
use crate::state::{lock, AppState, IdempotencyId, Idempotent, StoredAnswer, TokenKind};

fn is_token_path(path: &str) -> bool {
    path == "/accesstoken/get" || path == "/miami/v1/token"
}

fn is_control_path(path: &str) -> bool {
    path.starts_with("/_sandbox/")
}

/// Counts calls, adds the configured latency, and answers with an injected failure when one
/// is planned. Token and control calls are never failed.
pub(crate) async fn faults(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.calls.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path();
    if is_control_path(path) || is_token_path(path) {
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

/// Checks the bearer token and `Ocp-Apim-Subscription-Key` on every API call. A token from
/// `/miami/v1/token` needs no subscription key (one that is sent must still be right).
pub(crate) async fn credentials(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if is_control_path(path) || is_token_path(path) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let key = headers.get("ocp-apim-subscription-key").map(|v| v.to_str().unwrap_or_default());
    let key_ok = key == Some(state.config.credentials.subscription_key.as_str());
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
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

/// Fills `instance` (the request path) into problem answers, as the real APIs do.
pub(crate) async fn problem_instance(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.entry("instance").or_insert(serde_json::Value::String(path));
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(serde_json::Value::Object(map).to_string())
        }
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

const MAX_BODY: usize = 4 * 1024 * 1024;

/// Stores the answer to a successful request that carries an `Idempotency-Key`, per
/// merchant, method and path. The same key with the same body gets the stored answer again
/// (and nothing changes); the same key with another body is a 409, and so is a second request
/// with a key whose first request is still being handled. Answers that are not 2xx are not
/// stored: the key may be used again.
pub(crate) async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large", "the body is too large").into_response();
    };
    {
        let mut entries = lock(&state.idempotency);
        match entries.get(&id) {
            Some(Idempotent::Done(stored)) if stored.request_body != body => {
                return ApiError::conflict("this Idempotency-Key was used before with a different request").into_response()
            }
            Some(Idempotent::Done(stored)) => {
                let mut response = (stored.status, stored.body.clone()).into_response();
                if let Some(ct) = &stored.content_type {
                    response.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
                }
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return response;
            }
            Some(Idempotent::InFlight(_)) => {
                return ApiError::conflict("a request with this Idempotency-Key is still being processed").into_response()
            }
            None => {
                entries.insert(id.clone(), Idempotent::InFlight(body.clone()));
            }
        }
    }
    // From here the key is marked in flight; the guard clears the mark however this ends
    // (an error answer, or the client going away and the future being dropped).
    let mut guard = InFlight { state: &state, id: Some(id) };
    let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, response_body) = response.into_parts();
    let Ok(response_body) = axum::body::to_bytes(response_body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let answer = StoredAnswer {
        request_body: body,
        status: parts.status,
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
        body: response_body.clone(),
    };
    if let Some(id) = guard.id.take() {
        lock(&state.idempotency).insert(id, Idempotent::Done(answer));
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
            let mut entries = lock(&self.state.idempotency);
            if matches!(entries.get(&id), Some(Idempotent::InFlight(_))) {
                entries.remove(&id);
            }
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
            .layer(axum::middleware::from_fn(problem_instance))
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
