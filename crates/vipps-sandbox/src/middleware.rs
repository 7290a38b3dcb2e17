//! What every request goes through, outermost first: the call counter and injected faults,
//! then the credential checks, then `Idempotency-Key` replay.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;

use crate::problem::ApiError;
use crate::state::{lock, AppState, StoredAnswer};

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

/// Checks `Ocp-Apim-Subscription-Key` and the bearer token on every API call.
pub(crate) async fn credentials(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if is_control_path(path) || is_token_path(path) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let key = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok());
    if key != Some(state.config.credentials.subscription_key.as_str()) {
        return ApiError::unauthorized("a valid Ocp-Apim-Subscription-Key header is required").into_response();
    }
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match token {
        None => ApiError::unauthorized("a bearer token is required").into_response(),
        Some(token) if !state.token_valid(token) => {
            ApiError::unauthorized("the access token is expired or was not issued by this service").into_response()
        }
        Some(_) => next.run(request).await,
    }
}

const MAX_BODY: usize = 4 * 1024 * 1024;

/// Stores the answer to a successful request that carries an `Idempotency-Key`, per
/// merchant, method and path. The same key with the same body gets the stored answer again
/// (and nothing changes); the same key with another body is a 409.
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
    let id = (scope, request.method().to_string(), request.uri().path().to_owned(), key);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::bad_request("the body is too large").into_response();
    };
    let stored = lock(&state.idempotency).get(&id).cloned();
    if let Some(stored) = stored {
        if stored.request_body != body {
            return ApiError::conflict("this Idempotency-Key was used before with a different request").into_response();
        }
        let mut response = (stored.status, stored.body).into_response();
        if let Some(ct) = stored.content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return response;
    }
    let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, response_body) = response.into_parts();
    let Ok(response_body) = axum::body::to_bytes(response_body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    lock(&state.idempotency).insert(
        id,
        StoredAnswer {
            request_body: body,
            status: parts.status,
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            body: response_body.clone(),
        },
    );
    Response::from_parts(parts, Body::from(response_body))
}
