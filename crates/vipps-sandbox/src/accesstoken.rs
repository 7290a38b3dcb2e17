//! `POST /accesstoken/get` (client id, secret and subscription key in headers) and
//! `POST /miami/v1/token` (Basic auth, form body, no subscription key).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use vipps_accesstoken::types::{AuthorizationTokenResponse, TokenRequest, TokenResponse};

use crate::problem::{ApiError, ApiResult};
use crate::state::{AppState, TokenKind};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/accesstoken/get", post(get_token)).route("/miami/v1/token", post(miami_token))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn get_token(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<AuthorizationTokenResponse>> {
    let c = &state.config.credentials;
    for (name, expected) in
        [("client_id", &c.client_id), ("client_secret", &c.client_secret), ("ocp-apim-subscription-key", &c.subscription_key)]
    {
        match header(&headers, name) {
            None => return Err(ApiError::unauthorized(format!("the {name} header is missing"))),
            Some(given) if given != expected => {
                return Err(ApiError::unauthorized(format!("the {name} header is not valid")))
            }
            Some(_) => {}
        }
    }
    let lifetime = state.config.token_lifetime.min(crate::state::MAX_TOKEN_LIFETIME);
    let token = state.issue_token(lifetime, TokenKind::AccessToken);
    let now = state.now().timestamp();
    let secs = lifetime.as_secs();
    Ok(Json(AuthorizationTokenResponse {
        access_token: token,
        expires_in: secs.to_string(),
        ext_expires_in: secs.to_string(),
        expires_on: (now + secs as i64).to_string(),
        not_before: now.to_string(),
        resource: "00000002-0000-0000-c000-000000000000".into(),
        token_type: "Bearer".into(),
    }))
}

async fn miami_token(State(state): State<AppState>, headers: HeaderMap, body: bytes::Bytes) -> ApiResult<Json<TokenResponse>> {
    let c = &state.config.credentials;
    let basic = header(&headers, "authorization")
        .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic")).map(|(_, c)| c))
        .ok_or_else(|| ApiError::unauthorized("Basic authorization with the client id and secret is required"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthorized("the Basic credentials are not valid base64"))?;
    if decoded != format!("{}:{}", c.client_id, c.client_secret) {
        return Err(ApiError::unauthorized("the client id or secret is not valid"));
    }
    let form: TokenRequest = serde_urlencoded_form(&body)?;
    let _ = form.grant_type;
    let lifetime = state.config.miami_token_lifetime.min(crate::state::MAX_TOKEN_LIFETIME);
    Ok(Json(TokenResponse {
        access_token: state.issue_token(lifetime, TokenKind::Miami),
        expires_in: lifetime.as_secs() as i64,
        token_type: "Bearer".into(),
    }))
}

fn serde_urlencoded_form(body: &[u8]) -> ApiResult<TokenRequest> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::invalid("grant_type", "the form body is not UTF-8"))?;
    let uri: axum::http::Uri = format!("/?{text}").parse().map_err(|_| ApiError::invalid("grant_type", "not a form body"))?;
    axum::extract::Query::<TokenRequest>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid("grant_type", e.body_text()))
}
