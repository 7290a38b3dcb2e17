//! Error answers, as the real APIs give them: RFC 7807 `application/problem+json`, with
//! field-level details in `extraDetails` (`[{name, reason}]`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer. Handlers return `Result<_, ApiError>`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short summary.
    pub title: String,
    /// What went wrong in this request.
    pub detail: String,
    /// Per-field details: (field name, reason).
    pub fields: Vec<(String, String)>,
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Any status, title and detail.
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { status, title: title.into(), detail: detail.into(), fields: Vec::new() }
    }

    /// 400 about one field: the field is named in `detail` and in `extraDetails`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "Bad Request".into(),
            detail: format!("{field}: {reason}"),
            fields: vec![(field, reason)],
        }
    }

    /// 400 that is not about one field.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", detail)
    }

    /// 409: the request conflicts with the state (or with an earlier use of its idempotency key).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", detail)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "type": format!("https://developer.vippsmobilepay.com/docs/errors/{}", self.status.as_u16()),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "contextId": uuid::Uuid::new_v4().to_string(),
        });
        if !self.fields.is_empty() {
            body["extraDetails"] =
                self.fields.iter().map(|(name, reason)| json!({"name": name, "reason": reason})).collect();
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.title, self.detail)
    }
}

impl std::error::Error for ApiError {}
