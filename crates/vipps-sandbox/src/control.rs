//! Test controls over HTTP, for a sandbox run as its own process. They need no credentials,
//! so they take care not to be reachable from a web page the developer has open:
//!
//! - A request that a browser marks as coming from another site is refused with a
//!   `403 application/problem+json`: an `Origin` header other than the sandbox's own base URL
//!   ([`crate::state::Config::base_url`]; `null` included), or `Sec-Fetch-Site` other than
//!   `same-origin` or `none`. Tools that send neither (curl, the SDK) are served.
//! - A request with a body must say `Content-Type: application/json` (a page can send other
//!   types to another site without asking first); any other content type is a `415`.
//! - Values are bounded; one out of range is a `400` naming the field.
//!
//! The controls and their JSON bodies:
//!
//! - `POST /_sandbox/faults` with `{"failNext": {"count": 2, "status": 503}, "latencyMs": 250}`
//!   (both optional): answer the next `count` (0 to [`MAX_FAIL_COUNT`]) API calls with
//!   `status` (400 to 599); wait `latencyMs` (0 to [`MAX_LATENCY_MS`]) before every API call.
//! - `POST /_sandbox/expire-tokens`, no body (or `{}`): every token issued so far expires.
//! - `POST /_sandbox/clock` with `{"advanceSeconds": 86400}`: moves the sandbox clock
//!   forward (0 or more seconds, at most 100 years past the start in all); answers the new
//!   time (RFC 3339).
//!
//! The simulated business portal under `/_sandbox/portal/` (see [`crate::management`]) is
//! guarded the same way.

use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::extract::{parse_json, Json};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The most API calls `failNext.count` may fail in advance.
pub const MAX_FAIL_COUNT: u32 = 10_000;

/// The longest `latencyMs`: one minute.
pub const MAX_LATENCY_MS: u64 = 60_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sandbox/faults", post(faults))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .route("/_sandbox/clock", post(clock))
}

/// Refuses cross-site requests and bodies that are not JSON on every `/_sandbox/` path.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !crate::middleware::is_control_path(request.uri().path()) {
        return next.run(request).await;
    }
    if let Err(e) = check_same_site(request.headers(), state.base_url()) {
        return e.into_response();
    }
    let has_body = request.body().size_hint().lower() > 0;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        if let Err(e) = check_json(request.headers(), has_body) {
            return e.into_response();
        }
    }
    next.run(request).await
}

pub(crate) fn check_same_site(headers: &HeaderMap, own_origin: &str) -> ApiResult<()> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin.to_str().is_ok_and(|o| o.trim_end_matches('/').eq_ignore_ascii_case(own_origin));
        if !same {
            return Err(ApiError::forbidden(format!(
                "the test controls accept requests from no web origin but {own_origin}"
            )));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let ok = site.to_str().is_ok_and(|s| s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none"));
        if !ok {
            return Err(ApiError::forbidden("the test controls refuse cross-site requests (Sec-Fetch-Site)"));
        }
    }
    Ok(())
}

fn check_json(headers: &HeaderMap, has_body: bool) -> ApiResult<()> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
    let is_json = |ct: &str| ct.split(';').next().is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    match content_type {
        Some(ct) if is_json(ct) => Ok(()),
        None if !has_body => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "the test controls take only Content-Type: application/json",
        )),
    }
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultsRequest {
    #[serde(default)]
    fail_next: Option<FailNext>,
    #[serde(default)]
    latency_ms: Option<u64>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    count: u32,
    status: u16,
}

async fn faults(State(state): State<AppState>, Json(body): Json<FaultsRequest>) -> ApiResult<StatusCode> {
    // Check everything before changing anything.
    let fail_next = match body.fail_next {
        Some(f) => {
            let status = StatusCode::from_u16(f.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| ApiError::invalid("failNext.status", "must be an HTTP error status (400-599)"))?;
            if f.count > MAX_FAIL_COUNT {
                return Err(ApiError::invalid("failNext.count", format!("at most {MAX_FAIL_COUNT}")));
            }
            Some((f.count > 0).then_some((f.count, status)))
        }
        None => None,
    };
    let latency = match body.latency_ms {
        Some(ms) if ms > MAX_LATENCY_MS => {
            return Err(ApiError::invalid("latencyMs", format!("at most {MAX_LATENCY_MS} (one minute)")))
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => None,
    };
    let mut plan = lock(&state.faults);
    if let Some(fail_next) = fail_next {
        plan.fail_next = fail_next;
    }
    if let Some(latency) = latency {
        plan.latency = latency;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn expire_tokens(State(state): State<AppState>, body: bytes::Bytes) -> ApiResult<StatusCode> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: Empty = parse_json(&body)?;
    }
    state.expire_tokens();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockRequest {
    advance_seconds: i64,
}

async fn clock(State(state): State<AppState>, Json(body): Json<ClockRequest>) -> ApiResult<String> {
    let step = chrono::Duration::try_seconds(body.advance_seconds)
        .ok_or_else(|| ApiError::invalid("advanceSeconds", "too large"))?;
    let now = state.advance_clock(step).map_err(|e| ApiError::invalid("advanceSeconds", e.0))?;
    Ok(now.to_rfc3339())
}
