//! Test controls over HTTP, for a sandbox run as its own process: `POST /_sandbox/faults`,
//! `POST /_sandbox/expire-tokens`, `POST /_sandbox/clock`. They need no credentials.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sandbox/faults", post(faults))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .route("/_sandbox/clock", post(clock))
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
    let mut plan = lock(&state.faults);
    if let Some(f) = body.fail_next {
        let status = StatusCode::from_u16(f.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .ok_or_else(|| ApiError::invalid("failNext.status", "must be an HTTP error status (400-599)"))?;
        plan.fail_next = (f.count > 0).then_some((f.count, status));
    }
    if let Some(ms) = body.latency_ms {
        plan.latency = Duration::from_millis(ms);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_tokens(State(state): State<AppState>) -> StatusCode {
    state.expire_tokens();
    StatusCode::NO_CONTENT
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
