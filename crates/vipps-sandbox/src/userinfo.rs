//! The Userinfo API: the profile of the sandbox's one user, limited to the consented scopes.
//!
//! - `GET /vipps-userinfo-api/userinfo/` takes a user access token from the Login token
//!   endpoint (`Authorization: Bearer`) and the subscription key, and answers the claims of the
//!   scopes that token was issued for: `openid` gives `sub`; `name` the names; `email`;
//!   `phoneNumber`; `address` the default and other addresses; `birthDate`; `nin`.
//! - `GET /vipps-userinfo-api/userinfo/{sub}` takes the merchant's access token (as the other
//!   APIs do) and answers the claims of the scopes the user last consented to in a login; a
//!   `sub` that is not the test user's, or a user who has not consented yet, is a 404.
//!
//! A missing, unknown or expired user token is a 401 problem, as is a wrong subscription key.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use vipps_userinfo::types::{Userinfo, UserinfoAddress};

use crate::login::TEST_USER_SUB;
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The path of the Login flow's userinfo endpoint, which authenticates with a user token.
pub(crate) const USER_PATH: &str = "/vipps-userinfo-api/userinfo/";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(USER_PATH, get(userinfo)).route("/vipps-userinfo-api/userinfo/{sub}", get(by_sub))
}

/// The test user's whole profile.
pub fn test_user() -> Userinfo {
    let home = UserinfoAddress {
        address_type: Some("home".into()),
        country: Some("NO".into()),
        default: Some(true),
        formatted: Some("Robert Levins gate 5\n0154 Oslo".into()),
        postal_code: Some("0154".into()),
        region: Some("Oslo".into()),
        street_address: Some("Robert Levins gate 5".into()),
    };
    let work = UserinfoAddress { address_type: Some("work".into()), default: Some(false), ..home.clone() };
    Userinfo {
        accounts: Vec::new(),
        address: Some(home),
        other_addresses: vec![work],
        birthdate: chrono::NaiveDate::from_ymd_opt(2000, 12, 31),
        email: Some("ada.lovelace@example.com".into()),
        email_verified: Some(true),
        family_name: Some("Lovelace".into()),
        given_name: Some("Ada".into()),
        name: Some("Ada Lovelace".into()),
        nin: Some("31120012345".parse().expect("11 digits")),
        phone_number: Some("4712345678".parse().expect("digits")),
        sid: None,
        sub: Some(TEST_USER_SUB.into()),
    }
}

/// The test user's profile as far as `scope` (space-separated) allows.
pub fn claims_for(scope: &str) -> Userinfo {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let all = test_user();
    Userinfo {
        accounts: Vec::new(),
        address: all.address.filter(|_| has("address")),
        other_addresses: if has("address") { all.other_addresses } else { Vec::new() },
        birthdate: all.birthdate.filter(|_| has("birthDate")),
        email: all.email.filter(|_| has("email")),
        email_verified: all.email_verified.filter(|_| has("email")),
        family_name: all.family_name.filter(|_| has("name")),
        given_name: all.given_name.filter(|_| has("name")),
        name: all.name.filter(|_| has("name")),
        nin: all.nin.filter(|_| has("nin")),
        phone_number: all.phone_number.filter(|_| has("phoneNumber")),
        sid: None,
        sub: all.sub,
    }
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Userinfo>> {
    let key = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok());
    if key != Some(state.config.credentials.subscription_key.as_str()) {
        return Err(ApiError::unauthorized("a valid Ocp-Apim-Subscription-Key header is required"));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| ApiError::unauthorized("the user's access token is required as a bearer token"))?;
    let now = state.now();
    let scope = lock(&state.login)
        .user_tokens
        .get(token)
        .filter(|t| now < t.expires)
        .map(|t| t.scope.clone())
        .ok_or_else(|| ApiError::unauthorized("the user access token is expired or was not issued by the Login token endpoint"))?;
    Ok(Json(claims_for(&scope)))
}

async fn by_sub(State(state): State<AppState>, Path(sub): Path<String>) -> ApiResult<Json<Userinfo>> {
    let consented = lock(&state.login).consented.clone();
    match consented {
        Some(scope) if sub == TEST_USER_SUB => Ok(Json(claims_for(&scope))),
        _ => Err(ApiError::not_found("no user with this sub has consented to share information with this merchant")),
    }
}
