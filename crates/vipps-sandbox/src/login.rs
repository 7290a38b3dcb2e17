//! The Login API (OpenID Connect): discovery, JWKS, the authorization endpoint with a landing
//! page, the token endpoint (authorization code with PKCE, and CIBA polling) and the CIBA
//! back-channel authentication endpoint.
//!
//! - `GET /access-management-1.0/access/.well-known/openid-configuration` and `.../jwks.json`:
//!   the issuer is `<base URL>/access-management-1.0/access/`, and the JWKS holds the public
//!   half of [`SIGNING_KEY_PEM`] under the key id [`KEY_ID`].
//! - `GET .../oauth2/auth` with `client_id`, `response_type=code`, `scope` (with `openid`),
//!   `redirect_uri` (`http` or `https`), and optionally `state`, `nonce`, `code_challenge` with
//!   `code_challenge_method=S256` (`plain` is refused): an HTML page standing in for the app,
//!   with a plain form to approve or reject. The form posts back to the same path; approving
//!   redirects (303) to `redirect_uri?code=...&state=...`, rejecting to
//!   `redirect_uri?error=access_denied&state=...`. A request the page cannot be shown for
//!   (unknown client, no `openid`, a bad redirect URI) is a `400` with an OAuth error body.
//! - `POST .../oauth2/token`: client authentication by `client_secret_basic` or
//!   `client_secret_post` (not both). `authorization_code` checks the code (single use,
//!   valid [`CODE_LIFETIME`]), the `redirect_uri` it was issued for, and the PKCE verifier
//!   against the challenge; `urn:openid:params:grant-type:ciba` answers `authorization_pending`
//!   until the request is approved, `slow_down` (and 5 s more on its interval) when polled
//!   sooner than its interval, `access_denied` or `expired_token`. Success gives an access
//!   token for Userinfo and an RS256 ID token with `iss`, `aud` (the client id), `sub`, `iat`,
//!   `exp` ([`ID_TOKEN_LIFETIME`]), `auth_time`, and `nonce` (or `auth_req_id` for CIBA).
//! - `POST /vipps-login-ciba/api/backchannel/authentication`: the same client
//!   authentication; `scope` with `openid`, `login_hint` as `urn:msisdn:<digits>`, optional
//!   `binding_message` (`^[A-Z0-9-]{5,8}$`), `nonce`, `state`. Answers `auth_req_id`,
//!   `expires_in` ([`CIBA_LIFETIME`]) and `interval` ([`CIBA_INTERVAL`]). The user's side is
//!   [`crate::Sandbox::approve_ciba`] / [`crate::Sandbox::deny_ciba`], or
//!   `POST /_sandbox/login/ciba/<auth_req_id>` with `{"approve": true}` for a sandbox run as
//!   its own process.
//!
//! Simplifications: there is one user ([`TEST_USER_SUB`], the profile in
//! [`crate::userinfo`]), every phone number is that user, any `redirect_uri` is accepted (the
//! real service wants it registered in the portal), no refresh tokens are issued, and the
//! partner-key (Bearer) form of the token endpoint is not served.
//!
//! The signing key [`SIGNING_KEY_PEM`] is fixed and published here on purpose: it is **not a
//! secret** and proves nothing outside the sandbox. It lets tests sign tokens the way the
//! sandbox does.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vipps_login::types::{BackchannelAuthenticationResponse, JsonWebKey, JsonWebKeySet, OauthTokenResponse, WellKnown};

use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The RSA key the sandbox signs ID tokens with (PKCS#1 PEM). Not a secret: fixed, published,
/// good for nothing but the sandbox.
pub const SIGNING_KEY_PEM: &str = include_str!("login_key.pem");
/// The `kid` of [`SIGNING_KEY_PEM`] in the JWKS and in every ID token header.
pub const KEY_ID: &str = "vipps-sandbox-login-1";
/// The modulus of [`SIGNING_KEY_PEM`], base64url without padding (the JWK's `n`).
pub const KEY_MODULUS: &str = "uYmeh50hgzp8Ek1k_htAuXbtEIMmLPvdyau91pnkARpRSgv2zltbXlPZp8cUyFvNVFFHAe-TstHLyQ2S18F51-PZ5uZiko5ZuYCrDsD9YuXhiM70OOoTLY3VI3G2vSXp2Zx5r7lpE_8jU4wegf8JWhrXGAuX_413CeTs0sgvzeFD59JXa1-cAZipE7Fx9dASgZdTKWm3oo9cLeJVCv-TZzVwRCBmHmW1nD0dmZ5tAt-HuC6TuUnMMKQ1NaJlHK_ACkzrA32X4K5ugyb2aV7a6eCXkQgcLLJLqiFfE5fKlC9_KWYOzHXEd0UT6LBhioE4lGZ6v_BceOqAZFWxoxFbgQ";
/// The public exponent of [`SIGNING_KEY_PEM`] (the JWK's `e`).
pub const KEY_EXPONENT: &str = "AQAB";
/// The `sub` of the sandbox's one user.
pub const TEST_USER_SUB: &str = "c06c4afe-d9e1-4c5d-939a-177d752a0944";
/// How long an authorization code may be exchanged.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// How long an ID token is valid (`exp - iat`), and the user access token too.
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a CIBA request waits for the user (`expires_in`).
pub const CIBA_LIFETIME: Duration = Duration::from_secs(600);
/// The CIBA polling interval the sandbox asks for (`interval`).
pub const CIBA_INTERVAL: Duration = Duration::from_secs(5);

const BASE: &str = "/access-management-1.0/access";
const CIBA_PATH: &str = "/vipps-login-ciba/api/backchannel/authentication";

/// The paths that authenticate on their own (client credentials, or none), not with the
/// merchant access token the other APIs take.
pub(crate) fn is_own_auth_path(path: &str) -> bool {
    path.starts_with("/access-management-1.0/") || path == CIBA_PATH
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/.well-known/openid-configuration"), get(discovery))
        .route(&format!("{BASE}/.well-known/jwks.json"), get(jwks))
        .route(&format!("{BASE}/oauth2/auth"), get(authorize).post(decide))
        .route(&format!("{BASE}/oauth2/token"), post(token))
        .route(CIBA_PATH, post(backchannel))
        .route("/_sandbox/login/ciba/{auth_req_id}", post(ciba_control))
}

/// A login waiting on the landing page.
#[derive(Debug, Clone)]
struct Pending {
    /// Pages left unanswered are forgotten after [`CODE_LIFETIME`].
    expires: DateTime<Utc>,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    expires: DateTime<Utc>,
}

/// Where a CIBA request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CibaStatus {
    /// The user has not answered.
    Pending,
    /// The user confirmed; the next token poll gets the tokens.
    Approved,
    /// The user declined.
    Denied,
    /// The tokens were issued.
    Done,
}

#[derive(Debug, Clone)]
struct Ciba {
    client_id: String,
    scope: String,
    nonce: Option<String>,
    status: CibaStatus,
    expires: DateTime<Utc>,
    interval: Duration,
    last_poll: Option<DateTime<Utc>>,
}

/// A user access token issued by the token endpoint.
#[derive(Debug, Clone)]
pub struct UserToken {
    /// The scopes the user consented to.
    pub scope: String,
    /// When it stops being accepted (sandbox clock).
    pub expires: DateTime<Utc>,
}

/// The Login state.
#[derive(Debug, Default)]
pub struct Store {
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Grant>,
    ciba: HashMap<String, Ciba>,
    /// User access tokens, for Userinfo.
    pub user_tokens: HashMap<String, UserToken>,
    /// The scopes the user has consented to share, for Userinfo by `sub`.
    pub consented: Option<String>,
}

/// Above this many entries in one of the store's maps, the expired ones are dropped as new
/// ones come (so that a long run, or a page reloaded in a loop, does not grow without end).
pub const SWEEP_ABOVE: usize = 1000;

impl Store {
    /// Drops pending logins, codes, CIBA requests and user tokens that expired before `now`,
    /// when there are more than [`SWEEP_ABOVE`] of a kind.
    fn sweep(&mut self, now: DateTime<Utc>) {
        if self.pending.len() > SWEEP_ABOVE {
            self.pending.retain(|_, p| p.expires > now);
        }
        if self.codes.len() > SWEEP_ABOVE {
            self.codes.retain(|_, g| g.expires > now);
        }
        if self.ciba.len() > SWEEP_ABOVE {
            self.ciba.retain(|_, c| c.expires > now);
        }
        if self.user_tokens.len() > SWEEP_ABOVE {
            self.user_tokens.retain(|_, t| t.expires > now);
        }
    }

    /// How many pending logins, codes, CIBA requests and user tokens are kept.
    pub fn sizes(&self) -> [usize; 4] {
        [self.pending.len(), self.codes.len(), self.ciba.len(), self.user_tokens.len()]
    }

    /// Where the CIBA request `auth_req_id` stands.
    pub fn ciba_status(&self, auth_req_id: &str) -> Option<CibaStatus> {
        self.ciba.get(auth_req_id).map(|c| c.status)
    }

    /// Answers a pending CIBA request for the user; false if there is none pending by that id.
    pub fn answer_ciba(&mut self, auth_req_id: &str, approve: bool) -> bool {
        match self.ciba.get_mut(auth_req_id) {
            Some(c) if c.status == CibaStatus::Pending => {
                c.status = if approve { CibaStatus::Approved } else { CibaStatus::Denied };
                true
            }
            _ => false,
        }
    }
}

fn random_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn issuer(state: &AppState) -> String {
    format!("{}{BASE}/", state.base_url())
}

/// An OAuth error answer (`{"error": ..., "error_description": ...}`), as the Login API sends.
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    OAuthError { status, error: error.to_owned(), description: description.into() }.into_response()
}

/// An OAuth error not yet turned into a response (small, for `Result`s).
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: String,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self { status, error: error.to_owned(), description: description.into() }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "error_code": self.status.as_u16(), "error_description": self.description });
        (self.status, Json(body)).into_response()
    }
}

async fn discovery(State(state): State<AppState>) -> Json<WellKnown> {
    let base = state.base_url().to_owned();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Json(WellKnown {
        authorization_endpoint: format!("{base}{BASE}/oauth2/auth"),
        backchannel_authentication_endpoint: Some(format!("{base}{CIBA_PATH}")),
        claims_parameter_supported: Some(false),
        claims_supported: strings(&["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid"]),
        code_challenge_methods_supported: strings(&["S256"]),
        grant_types_supported: strings(&["authorization_code", "urn:openid:params:grant-type:ciba"]),
        id_token_signing_alg_values_supported: strings(&["RS256"]),
        issuer: issuer(&state),
        jwks_uri: format!("{base}{BASE}/.well-known/jwks.json"),
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        require_request_uri_registration: Some(false),
        response_modes_supported: strings(&["query"]),
        response_types_supported: strings(&["code"]),
        scopes_supported: strings(&["openid", "name", "email", "phoneNumber", "address", "birthDate", "nin"]),
        subject_types_supported: strings(&["pairwise"]),
        token_endpoint: format!("{base}{BASE}/oauth2/token"),
        token_endpoint_auth_methods_supported: strings(&["client_secret_basic", "client_secret_post"]),
        userinfo_endpoint: Some(format!("{base}/vipps-userinfo-api/userinfo/")),
    })
}

/// The sandbox's JWKS: the public half of [`SIGNING_KEY_PEM`].
pub fn jwk_set() -> JsonWebKeySet {
    let key = JsonWebKey::builder()
        .alg("RS256")
        .kty("RSA")
        .kid(KEY_ID)
        .use_("sig")
        .n(KEY_MODULUS)
        .e(KEY_EXPONENT);
    JsonWebKeySet { keys: vec![key.try_into().expect("a complete key")] }
}

async fn jwks() -> Json<JsonWebKeySet> {
    Json(jwk_set())
}

fn has_openid(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "openid")
}

fn valid_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.fragment().is_none())
}

async fn authorize(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let Some(client_id) = get("client_id") else { return bad("client_id is required") };
    if client_id != state.config.credentials.client_id {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "the client_id is not known");
    }
    let Some(redirect_uri) = get("redirect_uri").filter(|u| valid_redirect(u)) else {
        return bad("redirect_uri is required and must be an http or https URL without a fragment");
    };
    if get("response_type") != Some("code") {
        return bad("response_type must be code");
    }
    let Some(scope) = get("scope").filter(|s| has_openid(s)) else { return bad("scope must include openid") };
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) if c.len() == 43 => Some(c.to_owned()),
        (Some(_), Some("S256")) => return bad("code_challenge is not a base64url SHA-256"),
        _ => return bad("code_challenge_method must be S256, with a code_challenge"),
    };
    let pending = Pending {
        expires: state.now() + chrono::Duration::from_std(CODE_LIFETIME).unwrap_or_default(),
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state: get("state").map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        code_challenge,
    };
    let id = random_id();
    let body = format!(
        "<p>A service asks for: <strong id=\"scope\">{}</strong></p>\n\
         <form method=\"post\" action=\"{BASE}/oauth2/auth\">\n<input type=\"hidden\" name=\"request_id\" value=\"{id}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"reject\">Reject</button>\n</form>",
        html_escape::encode_safe(&pending.scope)
    );
    let mut login = lock(&state.login);
    login.sweep(state.now());
    login.pending.insert(id, pending);
    drop(login);
    crate::landing::page(StatusCode::OK, "Log in with the sandbox", &body)
}

#[derive(Debug, Deserialize)]
struct Decision {
    request_id: String,
    decision: String,
}

fn redirect_to(base: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(base) {
        Ok(u) => u,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the redirect_uri is not a URL"),
    };
    url.query_pairs_mut().extend_pairs(params);
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}

async fn decide(State(state): State<AppState>, Form(form): Form<Decision>) -> Response {
    let now = state.now();
    let Some(pending) = lock(&state.login).pending.remove(&form.request_id).filter(|p| p.expires > now) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no login is waiting with this request_id");
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    let code;
    match form.decision.as_str() {
        "approve" => {
            code = random_id();
            let expires = state.now() + chrono::Duration::from_std(CODE_LIFETIME).unwrap_or_default();
            let mut login = lock(&state.login);
            login.sweep(now);
            login.consented = Some(pending.scope.clone());
            login.codes.insert(
                code.clone(),
                Grant {
                    client_id: pending.client_id.clone(),
                    redirect_uri: pending.redirect_uri.clone(),
                    scope: pending.scope.clone(),
                    nonce: pending.nonce.clone(),
                    code_challenge: pending.code_challenge.clone(),
                    expires,
                },
            );
            params.push(("code", &code));
        }
        "reject" => {
            params.push(("error", "access_denied"));
            params.push(("error_description", "the user rejected the login"));
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "decision must be approve or reject"),
    }
    if let Some(s) = &pending.state {
        params.push(("state", s));
    }
    redirect_to(&pending.redirect_uri, &params)
}

fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("{k} is given twice")));
        }
    }
    Ok(map)
}

/// Client authentication: Basic or the form's `client_id` and `client_secret`, exactly one.
fn authenticate_client(state: &AppState, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<String, OAuthError> {
    let c = &state.config.credentials;
    let invalid = |d: &str| OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", d);
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let posted = form.contains_key("client_secret");
    let (id, secret) = match (basic, posted) {
        (Some(_), true) => return Err(invalid("use one client authentication method, not Basic and client_secret_post both")),
        (Some(value), false) => {
            let encoded = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .map(|(_, v)| v.trim())
                .ok_or_else(|| invalid("the Authorization header must be Basic"))?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("the Basic credentials are not valid base64"))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| invalid("the Basic credentials have no ':'"))?;
            (id.to_owned(), secret.to_owned())
        }
        (None, true) => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
        (None, false) => return Err(invalid("client authentication is required (client_secret_basic or client_secret_post)")),
    };
    if id != c.client_id || secret != c.client_secret {
        return Err(invalid("the client id or secret is not valid"));
    }
    Ok(id)
}

fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let ok_len = (43..=128).contains(&verifier.len());
    let ok_chars = verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    ok_len && ok_chars && computed == challenge
}

/// The claims of an ID token the sandbox signs.
#[derive(Debug, serde::Serialize)]
struct Claims<'a> {
    iss: String,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_req_id: Option<&'a str>,
    sid: String,
}

/// Signs `claims` (any JSON object) with the sandbox's key, as the token endpoint does:
/// RS256 with `kid` [`KEY_ID`]. For tests that need a token the sandbox would issue.
pub fn sign_id_token(claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes()).expect("the embedded key is valid");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KEY_ID.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing with a valid key does not fail")
}

fn issue_tokens(state: &AppState, client_id: &str, scope: &str, nonce: Option<&str>, auth_req_id: Option<&str>) -> Response {
    let now = state.now();
    let lifetime = chrono::Duration::from_std(ID_TOKEN_LIFETIME).unwrap_or_default();
    let claims = Claims {
        iss: issuer(state),
        aud: client_id,
        sub: TEST_USER_SUB,
        iat: now.timestamp(),
        exp: (now + lifetime).timestamp(),
        auth_time: now.timestamp(),
        nonce,
        auth_req_id,
        sid: uuid::Uuid::new_v4().to_string(),
    };
    let id_token = sign_id_token(&serde_json::to_value(&claims).unwrap_or_default());
    let access_token = format!("sbx-login.{}", random_id());
    {
        let mut login = lock(&state.login);
        login.sweep(now);
        login.consented = Some(scope.to_owned());
        login.user_tokens.insert(access_token.clone(), UserToken { scope: scope.to_owned(), expires: now + lifetime });
    }
    let body = OauthTokenResponse {
        access_token: Some(access_token),
        expires_in: Some(ID_TOKEN_LIFETIME.as_secs() as i64),
        id_token: Some(id_token),
        refresh_token: None,
        scope: Some(scope.to_owned()),
        token_type: Some("bearer".into()),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let client_id = match authenticate_client(&state, &headers, &form) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let bad = |e: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, e, d);
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri)) = (form.get("code"), form.get("redirect_uri")) else {
                return bad("invalid_request", "code and redirect_uri are required");
            };
            // A code is used once, whatever the outcome.
            let Some(grant) = lock(&state.login).codes.remove(code) else {
                return bad("invalid_grant", "the code is not valid or was used already");
            };
            if grant.expires <= state.now() {
                return bad("invalid_grant", "the code has expired");
            }
            if grant.client_id != client_id || &grant.redirect_uri != redirect_uri {
                return bad("invalid_grant", "the code was issued to another client or redirect_uri");
            }
            match (&grant.code_challenge, form.get("code_verifier")) {
                (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
                (Some(_), _) => return bad("invalid_grant", "the code_verifier does not match the code_challenge"),
                (None, Some(_)) => return bad("invalid_grant", "a code_verifier was sent for a code issued without a challenge"),
                (None, None) => {}
            }
            issue_tokens(&state, &client_id, &grant.scope, grant.nonce.as_deref(), None)
        }
        Some("urn:openid:params:grant-type:ciba") => {
            let Some(id) = form.get("auth_req_id") else { return bad("invalid_request", "auth_req_id is required") };
            let now = state.now();
            let (scope, nonce) = {
                let mut login = lock(&state.login);
                let Some(ciba) = login.ciba.get_mut(id) else { return bad("invalid_grant", "the auth_req_id is not known") };
                if ciba.client_id != client_id {
                    return bad("invalid_grant", "the auth_req_id belongs to another client");
                }
                if ciba.expires <= now && ciba.status != CibaStatus::Done {
                    return bad("expired_token", "the authentication request has expired");
                }
                let early = ciba.last_poll.is_some_and(|last| now - last < chrono::Duration::from_std(ciba.interval).unwrap_or_default());
                ciba.last_poll = Some(now);
                match ciba.status {
                    CibaStatus::Done => return bad("invalid_grant", "the tokens of this request were issued already"),
                    CibaStatus::Denied => return bad("access_denied", "the user declined the login"),
                    _ if early => {
                        ciba.interval += Duration::from_secs(5);
                        return bad("slow_down", "polled sooner than the interval allows; the interval is 5 s longer now");
                    }
                    CibaStatus::Pending => return bad("authorization_pending", "the user has not answered yet"),
                    CibaStatus::Approved => {
                        ciba.status = CibaStatus::Done;
                        (ciba.scope.clone(), ciba.nonce.clone())
                    }
                }
            };
            issue_tokens(&state, &client_id, &scope, nonce.as_deref(), Some(id))
        }
        Some(other) => bad("unsupported_grant_type", &format!("the sandbox does not serve grant type {other}")),
        None => bad("invalid_request", "grant_type is required"),
    }
}

async fn backchannel(State(state): State<AppState>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let client_id = match authenticate_client(&state, &headers, &form) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let Some(scope) = form.get("scope").filter(|s| has_openid(s)) else { return bad("scope must include openid") };
    let hint_ok = form
        .get("login_hint")
        .and_then(|h| h.strip_prefix("urn:msisdn:"))
        .is_some_and(|n| (8..=15).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
    if !hint_ok {
        return bad("login_hint must be urn:msisdn: and the phone number's digits");
    }
    if let Some(m) = form.get("binding_message") {
        if !((5..=8).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')) {
            return bad("binding_message must match ^[A-Z0-9-]{5,8}$");
        }
    }
    let id = random_id();
    let expires = state.now() + chrono::Duration::from_std(CIBA_LIFETIME).unwrap_or_default();
    let ciba = Ciba {
        client_id,
        scope: scope.clone(),
        nonce: form.get("nonce").cloned(),
        status: CibaStatus::Pending,
        expires,
        interval: CIBA_INTERVAL,
        last_poll: None,
    };
    let mut login = lock(&state.login);
    login.sweep(state.now());
    login.ciba.insert(id.clone(), ciba);
    drop(login);
    Json(BackchannelAuthenticationResponse {
        auth_req_id: id,
        expires_in: CIBA_LIFETIME.as_secs() as i64,
        interval: Some(CIBA_INTERVAL.as_secs() as i64),
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
struct CibaAnswer {
    approve: bool,
}

async fn ciba_control(
    State(state): State<AppState>,
    Path(auth_req_id): Path<String>,
    Json(answer): Json<CibaAnswer>,
) -> ApiResult<StatusCode> {
    if lock(&state.login).answer_ciba(&auth_req_id, answer.approve) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no pending CIBA request has this auth_req_id"))
    }
}
