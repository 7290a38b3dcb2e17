//! Login (OpenID Connect) conveniences: the redirect flow with `state`, PKCE (S256) and
//! `nonce`, ID token validation against the issuer's JWKS, and CIBA (merchant-initiated login)
//! with polling.
//!
//! ```no_run
//! # async fn run(vipps: vipps::Vipps, query_of_the_callback: &str) -> Result<(), vipps::login::LoginError> {
//! let provider = vipps::login::Provider::discover(&vipps).await?;
//! let request = provider.authorize("https://example.com/callback", &["openid", "name", "email"])?;
//! // Send the browser to `request.url`; keep `request.pending` (it is `Serialize`) in the
//! // user's session until the callback comes.
//! let tokens = provider.exchange(&request.pending, query_of_the_callback).await?;
//! println!("logged in: {}", tokens.claims.sub);
//! # Ok(()) }
//! ```
//!
//! Every check has its own [`LoginError`]; none prints a token, a code, a verifier or a secret.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use vipps_core::{ClientAuth, Context, Error, Runtime};
use vipps_login::types::{JsonWebKeySet, TokenBody};

/// The ID token's `exp` and `iat` may be off by this much (clock skew), by default.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The longest ID token read; a longer one is [`LoginError::MalformedIdToken`] unread.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// What OIDC CIBA adds to the polling interval on each `slow_down`.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The CIBA polling interval when the server names none (OIDC CIBA's default).
pub const DEFAULT_CIBA_INTERVAL: Duration = Duration::from_secs(5);
/// The longest CIBA `expires_in` (and `interval`) taken as given; a longer one counts as this.
pub const MAX_CIBA_LIFETIME: Duration = Duration::from_secs(24 * 3600);

const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// What went wrong in a login. No variant holds a token, code, verifier or secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginError {
    /// A call to the Login API failed (transport, a status the flow does not expect, ...).
    Api(Error),
    /// The caller's input is not usable (a redirect URI that is not a URL, no `openid` scope).
    InvalidInput(String),
    /// The callback's `state` is missing or is not the one this login sent: the callback
    /// does not belong to this login (CSRF, or a mixed-up session).
    StateMismatch,
    /// The callback carries neither a `code` nor an `error`.
    MissingCode,
    /// The user (or the service) refused: the callback's or the token endpoint's `error`
    /// (`access_denied`, ...) and its description.
    Denied {
        /// The OAuth error code.
        error: String,
        /// The description the server gave, if any.
        description: Option<String>,
    },
    /// The token answer has no ID token (or no access token).
    MissingToken(&'static str),
    /// The ID token is not a JWS this SDK can read (structure, base64, JSON, size).
    MalformedIdToken(String),
    /// The ID token is signed with another algorithm than RS256.
    UnsupportedAlgorithm(String),
    /// The ID token's header names no `kid`.
    MissingKeyId,
    /// The ID token's `kid` is not in the issuer's JWKS.
    UnknownKeyId(String),
    /// The signature does not verify with the issuer's key.
    BadSignature,
    /// `iss` is not the issuer of the discovery document.
    WrongIssuer {
        /// The issuer expected.
        expected: String,
        /// The `iss` of the token.
        found: String,
    },
    /// `aud` does not name this client.
    WrongAudience,
    /// `exp` has passed, beyond the leeway.
    Expired {
        /// `exp`, in seconds since the epoch.
        exp: i64,
        /// The time it was checked at, in seconds since the epoch.
        now: i64,
    },
    /// `iat` is in the future, beyond the leeway.
    IssuedInTheFuture {
        /// `iat`, in seconds since the epoch.
        iat: i64,
        /// The time it was checked at, in seconds since the epoch.
        now: i64,
    },
    /// The ID token has no `nonce`, but the login sent one.
    MissingNonce,
    /// The ID token's `nonce` is not the one this login sent (a replayed token).
    NonceMismatch,
    /// The ID token's `auth_req_id` is not the CIBA request's.
    AuthReqIdMismatch,
    /// The CIBA request expired (`expired_token`, or its `expires_in` passed while polling).
    CibaExpired,
    /// The issuer's discovery document or JWKS is not usable (no RSA signing key, a key that
    /// does not decode, no back-channel endpoint for CIBA).
    Discovery(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Api(e) => write!(f, "the Login API call failed: {e}"),
            LoginError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            LoginError::StateMismatch => f.write_str("the callback's state is not this login's"),
            LoginError::MissingCode => f.write_str("the callback has neither a code nor an error"),
            LoginError::Denied { error, description } => {
                write!(f, "the login was refused: {error}")?;
                description.as_deref().map_or(Ok(()), |d| write!(f, " ({d})"))
            }
            LoginError::MissingToken(which) => write!(f, "the token answer has no {which}"),
            LoginError::MalformedIdToken(m) => write!(f, "the ID token is malformed: {m}"),
            LoginError::UnsupportedAlgorithm(a) => write!(f, "the ID token is signed with {a}, not RS256"),
            LoginError::MissingKeyId => f.write_str("the ID token names no key (kid)"),
            LoginError::UnknownKeyId(kid) => write!(f, "the ID token's key {kid:?} is not in the issuer's JWKS"),
            LoginError::BadSignature => f.write_str("the ID token's signature does not verify"),
            LoginError::WrongIssuer { expected, found } => write!(f, "the ID token is from {found:?}, not {expected:?}"),
            LoginError::WrongAudience => f.write_str("the ID token is not for this client (aud)"),
            LoginError::Expired { exp, now } => write!(f, "the ID token expired at {exp} (now {now})"),
            LoginError::IssuedInTheFuture { iat, now } => write!(f, "the ID token is issued at {iat}, after now ({now})"),
            LoginError::MissingNonce => f.write_str("the ID token has no nonce"),
            LoginError::NonceMismatch => f.write_str("the ID token's nonce is not this login's"),
            LoginError::AuthReqIdMismatch => f.write_str("the ID token's auth_req_id is not this request's"),
            LoginError::CibaExpired => f.write_str("the back-channel login expired before the user answered"),
            LoginError::Discovery(m) => write!(f, "the issuer's configuration is not usable: {m}"),
        }
    }
}

impl std::error::Error for LoginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoginError::Api(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        LoginError::Api(e)
    }
}

/// 32 random bytes from the thread's CSPRNG, base64url without padding (43 characters).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two strings in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The claims of a validated ID token. Its `Debug` hides the `nonce` and the `auth_req_id`.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
pub struct IdTokenClaims {
    /// The user's id at this merchant.
    pub sub: String,
    /// The issuer.
    pub iss: String,
    /// The audience (one client id, or several).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, in seconds since the epoch.
    pub exp: i64,
    /// Issued at, in seconds since the epoch.
    pub iat: i64,
    /// When the user authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// The nonce of the login.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The CIBA request it answers.
    #[serde(default)]
    pub auth_req_id: Option<String>,
    /// The session id.
    #[serde(default)]
    pub sid: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("IdTokenClaims")
            .field("sub", &self.sub)
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .field("auth_time", &self.auth_time)
            .field("nonce", &hidden(&self.nonce))
            .field("auth_req_id", &hidden(&self.auth_req_id))
            .field("sid", &self.sid)
            .field("other", &self.other)
            .finish()
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(s) => vec![s],
        Aud::Many(v) => v,
    })
}

/// What a login must remember between sending the user away and the callback: `state`, the
/// PKCE verifier, `nonce` and the redirect URI. Store it server-side (a session): it is
/// `Serialize`, and its `Debug` shows none of the three secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    state: String,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &"[REDACTED]")
            .field("nonce", &"[REDACTED]")
            .field("code_verifier", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl PendingLogin {
    /// The `state` sent with the authorization request (to find the session again, say).
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The redirect URI the login was started with.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

/// An authorization request: where to send the user, and what to keep until they return.
/// Its `Debug` shows the URL without its query, which holds the state and the nonce.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// The authorization endpoint's URL with every parameter.
    pub url: String,
    /// What [`Provider::exchange`] needs when the user comes back.
    pub pending: PendingLogin,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("AuthorizationRequest").field("url", &format_args!("{endpoint}?[REDACTED]")).field("pending", &self.pending).finish()
    }
}

/// The tokens of a finished login, with the validated ID token's claims.
#[derive(Clone)]
pub struct LoginTokens {
    access_token: SecretString,
    id_token: SecretString,
    /// The validated ID token's claims.
    pub claims: IdTokenClaims,
    /// The scopes granted, as the token endpoint said.
    pub scope: Option<String>,
    /// The access token's lifetime in seconds, as the token endpoint said.
    pub expires_in: Option<i64>,
}

impl fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginTokens")
            .field("access_token", &"[REDACTED]")
            .field("id_token", &"[REDACTED]")
            .field("claims", &self.claims)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl LoginTokens {
    /// The user's access token, for Userinfo ([`crate::Vipps::userinfo_for`]).
    pub fn access_token(&self) -> &str {
        self.access_token.expose_secret()
    }

    /// The ID token as received (already validated).
    pub fn id_token(&self) -> &str {
        self.id_token.expose_secret()
    }
}

/// A CIBA request in progress: what [`Provider::poll_ciba`] needs.
#[derive(Clone)]
pub struct CibaPending {
    auth_req_id: SecretString,
    nonce: String,
    /// How long the request lives, from when it was made.
    pub expires_in: Duration,
    /// The polling interval the server asked for.
    pub interval: Duration,
    started: tokio::time::Instant,
}

impl fmt::Debug for CibaPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CibaPending")
            .field("auth_req_id", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

impl CibaPending {
    /// The request's `auth_req_id` (for the sandbox's approval control, say).
    pub fn auth_req_id(&self) -> &str {
        self.auth_req_id.expose_secret()
    }
}

/// A CIBA (merchant-initiated login) request: the user's phone number and the scopes.
#[derive(Debug, Clone)]
pub struct CibaRequest {
    phone_number: String,
    scopes: Vec<String>,
    binding_message: Option<String>,
}

impl CibaRequest {
    /// A login of the user with `phone_number` (country code and number, digits only) for
    /// `scopes` (`openid` is added if missing).
    pub fn new(phone_number: impl Into<String>, scopes: &[&str]) -> Self {
        Self { phone_number: phone_number.into(), scopes: scopes.iter().map(|s| s.to_string()).collect(), binding_message: None }
    }

    /// A short code shown in the app (`^[A-Z0-9-]{5,8}$`).
    pub fn binding_message(mut self, message: impl Into<String>) -> Self {
        self.binding_message = Some(message.into());
        self
    }
}

fn scope_string(scopes: &[impl AsRef<str>]) -> String {
    let mut list: Vec<&str> = scopes.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()).collect();
    if !list.contains(&"openid") {
        list.insert(0, "openid");
    }
    list.join(" ")
}

/// The Login API of one issuer: its endpoints and signing keys, and the client it logs in for.
#[derive(Clone)]
pub struct Provider {
    runtime: Runtime,
    client_auth: ClientAuth,
    issuer: String,
    authorization_endpoint: String,
    keys: HashMap<String, DecodingKey>,
    client_id: String,
    leeway: Duration,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("key_ids", &kids)
            .field("client_auth", &self.client_auth)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Provider {
    /// Reads the issuer's discovery document and JWKS through `vipps` (its base URL, and its
    /// client id as the audience).
    pub async fn discover(vipps: &crate::Vipps) -> Result<Self, LoginError> {
        let client = vipps.login();
        let config = client.openid_configuration().send().await?.into_inner();
        let jwks = client.fetch_jwks().send().await?.into_inner();
        let mut provider = Self::from_parts(vipps, &config.issuer, &config.authorization_endpoint, &jwks)?;
        if !config.id_token_signing_alg_values_supported.is_empty()
            && !config.id_token_signing_alg_values_supported.iter().any(|a| a == "RS256")
        {
            return Err(LoginError::Discovery("the issuer does not sign ID tokens with RS256".into()));
        }
        provider.client_auth = ClientAuth::Basic;
        Ok(provider)
    }

    /// A provider from an issuer, authorization endpoint and JWKS known already (cached, or
    /// for tests). Keys that are not RSA signing keys are left out; none left is an error.
    pub fn from_parts(vipps: &crate::Vipps, issuer: &str, authorization_endpoint: &str, jwks: &JsonWebKeySet) -> Result<Self, LoginError> {
        let mut keys = HashMap::new();
        for key in &jwks.keys {
            if key.kty != "RSA" || (key.use_ != "sig" && !key.use_.is_empty()) || (key.alg != "RS256" && !key.alg.is_empty()) {
                continue;
            }
            let (Some(n), Some(e)) = (&key.n, &key.e) else { continue };
            let decoding = DecodingKey::from_rsa_components(n, e)
                .map_err(|_| LoginError::Discovery(format!("the key {:?} does not decode", key.kid)))?;
            keys.insert(key.kid.clone(), decoding);
        }
        if keys.is_empty() {
            return Err(LoginError::Discovery("the JWKS has no RS256 signing key".into()));
        }
        url::Url::parse(authorization_endpoint)
            .map_err(|_| LoginError::Discovery("the authorization endpoint is not a URL".into()))?;
        Ok(Self {
            runtime: vipps.runtime().clone(),
            client_auth: ClientAuth::Basic,
            issuer: issuer.to_owned(),
            authorization_endpoint: authorization_endpoint.to_owned(),
            keys,
            client_id: vipps.runtime().client_id().to_owned(),
            leeway: DEFAULT_LEEWAY,
        })
    }

    /// Sends the client id and secret in the form body (`client_secret_post`) instead of
    /// HTTP Basic (`client_secret_basic`, the default), as the portal may be set to.
    pub fn client_secret_post(mut self) -> Self {
        self.client_auth = ClientAuth::Post;
        self
    }

    /// How far `exp` and `iat` may be off ([`DEFAULT_LEEWAY`] by default).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The issuer (`iss` of its ID tokens).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn client(&self) -> vipps_login::Client {
        vipps_login::Client::from_context(Context::new(self.runtime.clone(), &vipps_login::API).with_client_auth(self.client_auth))
    }

    /// Starts a login: the authorization URL with fresh random `state`, `nonce` and PKCE
    /// verifier (S256 challenge), and the [`PendingLogin`] to keep until the callback.
    pub fn authorize(&self, redirect_uri: &str, scopes: &[&str]) -> Result<AuthorizationRequest, LoginError> {
        let parsed = url::Url::parse(redirect_uri).map_err(|_| LoginError::InvalidInput("the redirect URI is not a URL".into()))?;
        if parsed.fragment().is_some() {
            return Err(LoginError::InvalidInput("the redirect URI may not have a fragment".into()));
        }
        let pending = PendingLogin {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
            redirect_uri: redirect_uri.to_owned(),
        };
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let mut url = url::Url::parse(&self.authorization_endpoint)
            .map_err(|_| LoginError::Discovery("the authorization endpoint is not a URL".into()))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", &scope_string(scopes))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("redirect_uri", redirect_uri);
        Ok(AuthorizationRequest { url: url.into(), pending })
    }

    /// Finishes a login from the callback's query string (`code=...&state=...`, with or
    /// without a leading `?`): checks `state`, exchanges the code with the PKCE verifier, and
    /// validates the ID token (signature, issuer, audience, time, nonce).
    pub async fn exchange(&self, pending: &PendingLogin, callback_query: &str) -> Result<LoginTokens, LoginError> {
        let params: HashMap<String, String> = url::form_urlencoded::parse(callback_query.trim_start_matches('?').as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // The state first: a callback that is not this login's says nothing about it.
        match params.get("state") {
            Some(s) if same(s, &pending.state) => {}
            _ => return Err(LoginError::StateMismatch),
        }
        if let Some(error) = params.get("error") {
            return Err(LoginError::Denied { error: error.clone(), description: params.get("error_description").cloned() });
        }
        let code = params.get("code").filter(|c| !c.is_empty()).ok_or(LoginError::MissingCode)?;
        let body = TokenBody::builder()
            .grant_type("authorization_code")
            .code(code.clone())
            .redirect_uri(pending.redirect_uri.clone())
            .code_verifier(pending.code_verifier.clone());
        let answer = self.client().token().body(body).send().await.map_err(oauth_error)?.into_inner();
        self.tokens(answer, Some(&pending.nonce), None, SystemTime::now())
    }

    fn tokens(
        &self,
        answer: vipps_login::types::OauthTokenResponse,
        nonce: Option<&str>,
        auth_req_id: Option<&str>,
        now: SystemTime,
    ) -> Result<LoginTokens, LoginError> {
        let id_token = answer.id_token.ok_or(LoginError::MissingToken("ID token"))?;
        let access_token = answer.access_token.ok_or(LoginError::MissingToken("access token"))?;
        let claims = self.validate_id_token_at(&id_token, nonce, now)?;
        if let Some(expected) = auth_req_id {
            if claims.auth_req_id.as_deref().is_some_and(|got| !same(got, expected)) {
                return Err(LoginError::AuthReqIdMismatch);
            }
        }
        Ok(LoginTokens {
            access_token: access_token.into(),
            id_token: id_token.into(),
            claims,
            scope: answer.scope,
            expires_in: answer.expires_in,
        })
    }

    /// Validates an ID token now; see [`Provider::validate_id_token_at`].
    pub fn validate_id_token(&self, token: &str, expected_nonce: Option<&str>) -> Result<IdTokenClaims, LoginError> {
        self.validate_id_token_at(token, expected_nonce, SystemTime::now())
    }

    /// Validates an ID token as of `now`: RS256, a `kid` of the issuer's JWKS, the signature,
    /// `iss`, `aud` (this client), `exp` and `iat` within the leeway, and `nonce` when one is
    /// expected. Any input, however hostile, gives claims or an error.
    pub fn validate_id_token_at(&self, token: &str, expected_nonce: Option<&str>, now: SystemTime) -> Result<IdTokenClaims, LoginError> {
        if token.len() > MAX_ID_TOKEN_BYTES {
            return Err(LoginError::MalformedIdToken(format!("longer than {MAX_ID_TOKEN_BYTES} bytes")));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| LoginError::MalformedIdToken(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(LoginError::UnsupportedAlgorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(LoginError::MissingKeyId)?;
        let key = self.keys.get(&kid).ok_or_else(|| LoginError::UnknownKeyId(kid.clone()))?;
        // The library checks the signature; the claims are checked below, each with its own
        // error and against the caller's `now`.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<IdTokenClaims>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => LoginError::BadSignature,
            _ => LoginError::MalformedIdToken(e.to_string()),
        })?;
        let claims = data.claims;
        if claims.iss != self.issuer {
            return Err(LoginError::WrongIssuer { expected: self.issuer.clone(), found: claims.iss });
        }
        if !claims.aud.iter().any(|a| a == &self.client_id) {
            return Err(LoginError::WrongAudience);
        }
        let now = secs(now);
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if now > claims.exp.saturating_add(leeway) {
            return Err(LoginError::Expired { exp: claims.exp, now });
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(LoginError::IssuedInTheFuture { iat: claims.iat, now });
        }
        if let Some(expected) = expected_nonce {
            match &claims.nonce {
                None => return Err(LoginError::MissingNonce),
                Some(got) if !same(got, expected) => return Err(LoginError::NonceMismatch),
                Some(_) => {}
            }
        }
        Ok(claims)
    }

    /// Starts a CIBA (merchant-initiated) login: the user gets a push in the app. Poll it
    /// with [`Provider::poll_ciba`].
    pub async fn start_ciba(&self, request: CibaRequest) -> Result<CibaPending, LoginError> {
        if request.phone_number.is_empty() || !request.phone_number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LoginError::InvalidInput("the phone number must be digits only (country code and number)".into()));
        }
        let nonce = random_token();
        let mut body = vipps_login::types::BackchannelAuthenticationBody::builder()
            .scope(scope_string(&request.scopes))
            .login_hint(format!("urn:msisdn:{}", request.phone_number))
            .nonce(nonce.clone());
        if let Some(m) = request.binding_message {
            body = body.binding_message(m);
        }
        let started = tokio::time::Instant::now();
        let answer = self.client().backchannel_authentication().body(body).send().await.map_err(oauth_error)?.into_inner();
        // Bounded, so that no answer makes a deadline overflow: a day at most, and the interval
        // no longer than that.
        let expires_in = Duration::from_secs(u64::try_from(answer.expires_in).unwrap_or(0).min(MAX_CIBA_LIFETIME.as_secs()));
        let interval = answer.interval.and_then(|i| u64::try_from(i).ok()).filter(|i| *i > 0).map_or(DEFAULT_CIBA_INTERVAL, Duration::from_secs);
        let interval = interval.min(MAX_CIBA_LIFETIME);
        Ok(CibaPending { auth_req_id: answer.auth_req_id.into(), nonce, expires_in, interval, started })
    }

    /// Polls the token endpoint for a CIBA login until the user answers: waits `interval`
    /// before each request, adds [`SLOW_DOWN_STEP`] on each `slow_down`, and gives up with
    /// [`LoginError::CibaExpired`] when the next request would be after `expires_in`. On
    /// success the ID token is validated like a redirect login's (with the request's nonce).
    pub async fn poll_ciba(&self, pending: &CibaPending) -> Result<LoginTokens, LoginError> {
        let deadline = pending.started + pending.expires_in;
        let mut interval = pending.interval;
        loop {
            if tokio::time::Instant::now() + interval > deadline {
                return Err(LoginError::CibaExpired);
            }
            tokio::time::sleep(interval).await;
            let body = TokenBody::builder().grant_type(CIBA_GRANT).auth_req_id(pending.auth_req_id.expose_secret().to_owned());
            match self.client().token().body(body).send().await {
                Ok(answer) => {
                    return self.tokens(answer.into_inner(), Some(&pending.nonce), Some(pending.auth_req_id.expose_secret()), SystemTime::now())
                }
                Err(e) => match oauth_code(&e).as_deref() {
                    Some("authorization_pending") => {}
                    Some("slow_down") => interval += SLOW_DOWN_STEP,
                    Some("expired_token") => return Err(LoginError::CibaExpired),
                    _ => return Err(oauth_error(e)),
                },
            }
        }
    }
}

/// The OAuth `error` of a 400 answer from the token or back-channel endpoint.
fn oauth_code(e: &Error) -> Option<String> {
    match e {
        Error::Api { status: 400, problem } => problem.other.get("error").and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    }
}

/// An OAuth refusal (`access_denied`) as [`LoginError::Denied`], anything else as it is.
fn oauth_error(e: Error) -> LoginError {
    match oauth_code(&e).as_deref() {
        Some("access_denied") => {
            let description = match &e {
                Error::Api { problem, .. } => problem.other.get("error_description").and_then(|v| v.as_str()).map(str::to_owned),
                _ => None,
            };
            LoginError::Denied { error: "access_denied".into(), description }
        }
        _ => LoginError::Api(e),
    }
}
