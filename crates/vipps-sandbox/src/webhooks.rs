//! Webhooks API v1: register a URL for a set of events, list the registrations, delete one.
//!
//! Registrations belong to the merchant of the call (`Merchant-Serial-Number`, or the
//! sandbox's own merchant when a partner calls without one): another merchant neither sees
//! nor deletes them (404). Each registration gets its own secret, returned once by the
//! register call, with which the deliveries to it are signed.
//!
//! Checks: `url` an absolute URL (the real service wants HTTPS and a world-reachable host;
//! the sandbox takes `http://` too, so that a receiver on loopback can be registered), at
//! least one event, each event name non-empty and without whitespace, at most
//! [`MAX_WEBHOOKS`] registrations per merchant. A failed check is a 400 naming the field.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::Router;
use vipps_webhooks::types::{QueryResponse, RegisterRequest, RegisterResponse, Webhook};

use crate::extract::{check_url, Json, Path};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// How many webhooks one merchant may register.
pub const MAX_WEBHOOKS: usize = 25;

/// One registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The merchant it belongs to.
    pub msn: String,
    /// Its id.
    pub id: uuid::Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The event names it wants.
    pub events: Vec<String>,
    /// The secret deliveries are signed with.
    pub secret: String,
}

/// Webhook registrations, oldest first.
#[derive(Debug, Default)]
pub struct Store {
    registrations: Vec<Registration>,
}

impl Store {
    /// Every registration, oldest first, for tests that look inside.
    pub fn registrations(&self) -> &[Registration] {
        &self.registrations
    }

    /// The registrations of `msn` that want `event`.
    pub fn subscribers(&self, msn: &str, event: &str) -> Vec<Registration> {
        self.registrations.iter().filter(|r| r.msn == msn && r.events.iter().any(|e| e == event)).cloned().collect()
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/v1/webhooks", get(list).post(register))
        .route("/webhooks/v1/webhooks/{id}", delete(remove))
}

/// The merchant a call acts for: its `Merchant-Serial-Number`, checked, or the sandbox's own.
fn merchant(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if headers.contains_key("merchant-serial-number") {
        crate::extract::msn(headers)
    } else {
        Ok(state.config.credentials.merchant_serial_number.clone())
    }
}

fn view(r: &Registration) -> Webhook {
    Webhook { events: r.events.clone(), id: r.id, url: r.url.clone() }
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<QueryResponse>> {
    let msn = merchant(&state, &headers)?;
    let store = lock(&state.webhooks);
    Ok(axum::Json(QueryResponse { webhooks: store.registrations.iter().filter(|r| r.msn == msn).map(view).collect() }))
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisterResponse>)> {
    let msn = merchant(&state, &headers)?;
    check_url("url", &body.url)?;
    if body.events.is_empty() {
        return Err(ApiError::invalid("events", "at least one event is required"));
    }
    if let Some(i) = body.events.iter().position(|e| e.is_empty() || e.chars().any(char::is_whitespace)) {
        return Err(ApiError::invalid(
            format!("events[{i}]"),
            "must be an event name, such as epayments.payment.authorized.v1",
        ));
    }
    let mut store = lock(&state.webhooks);
    if store.registrations.iter().filter(|r| r.msn == msn).count() >= MAX_WEBHOOKS {
        return Err(ApiError::bad_request(format!("a merchant may register at most {MAX_WEBHOOKS} webhooks")));
    }
    let registration = Registration {
        msn,
        id: uuid::Uuid::new_v4(),
        url: body.url,
        events: body.events,
        secret: uuid::Uuid::new_v4().to_string(),
    };
    let answer = RegisterResponse { id: registration.id, secret: registration.secret.clone() };
    store.registrations.push(registration);
    Ok((StatusCode::CREATED, axum::Json(answer)))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    let msn = merchant(&state, &headers)?;
    let mut store = lock(&state.webhooks);
    let before = store.registrations.len();
    store.registrations.retain(|r| !(r.id == id && r.msn == msn));
    if store.registrations.len() == before {
        return Err(ApiError::not_found(format!("no webhook with id {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
