//! The functions every generated client's `ClientHooks` impl delegates to, and [`query`],
//! which the generated request builders call.
//!
//! `pre` runs once per call, before the first attempt: it sets the managed headers (token,
//! subscription key, merchant serial number, `Psp-Id`, `Vipps-System-*`) and the idempotency
//! key. `exec` runs the attempts: retries with backoff, one token refetch on 401, time
//! limits, a tracing span, and error bodies made readable as [`Problem`](crate::Problem)s.

use std::ops::ControlFlow;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::{field, Instrument};

use crate::config::{IdempotencyKey, RetryPolicy};
use crate::context::Context;
use crate::error::Error;
use crate::token::AccessToken;

// Header names, built at compile time (`from_static` would otherwise validate them per call).
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static CLIENT_ID: HeaderName = HeaderName::from_static("client_id");
static CLIENT_SECRET: HeaderName = HeaderName::from_static("client_secret");
static SUBSCRIPTION_KEY: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");
static MERCHANT_SERIAL_NUMBER: HeaderName = HeaderName::from_static("merchant-serial-number");
static PSP_ID: HeaderName = HeaderName::from_static("psp-id");

fn header_value(value: &str, sensitive: bool) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| Error::invalid_input("a header value is not valid ASCII"))?;
    v.set_sensitive(sensitive);
    Ok(v)
}

fn set_bearer(headers: &mut HeaderMap, token: &AccessToken) -> Result<(), Error> {
    let value = token.bearer_header().ok_or_else(|| Error::invalid_input("a header value is not valid ASCII"))?;
    headers.insert(AUTHORIZATION, value.clone());
    Ok(())
}

/// Prepares a request before its first attempt.
///
/// The values of the managed headers are built once (by the runtime, the context and the
/// token cache) and only cloned here: a call does not format or validate them again.
pub async fn pre(ctx: &Context, request: &mut reqwest::Request, operation: &str) -> Result<(), Error> {
    let runtime = ctx.runtime();
    let api = ctx.api();
    let headers = request.headers_mut();
    // Validate the caller's input first: nothing, not even a token request, goes out on bad input.
    if api.operation(operation).is_some_and(|op| op.idempotency_key) {
        match headers.get(&IDEMPOTENCY_KEY) {
            Some(given) => {
                let given = given.to_str().map_err(|_| Error::invalid_input("Idempotency-Key is not valid ASCII"))?;
                IdempotencyKey::validate(given)?;
            }
            None => {
                headers.insert(IDEMPOTENCY_KEY.clone(), header_value(IdempotencyKey::generate().as_str(), false)?);
            }
        }
    }
    match (api.name, operation) {
        ("accesstoken", "fetch_authorization_token_using_post") => {
            headers.insert(CLIENT_ID.clone(), header_value(runtime.client_id(), true)?);
            headers.insert(CLIENT_SECRET.clone(), header_value(runtime.client_secret(), true)?);
            headers.insert(SUBSCRIPTION_KEY.clone(), runtime.subscription_key_header().clone());
        }
        ("accesstoken", _) => {
            headers.insert(AUTHORIZATION, header_value(&runtime.basic_credentials(), true)?);
        }
        _ => {
            let token = runtime.access_token().await?;
            let headers = request.headers_mut();
            set_bearer(headers, &token)?;
            headers.insert(SUBSCRIPTION_KEY.clone(), runtime.subscription_key_header().clone());
        }
    }
    let headers = request.headers_mut();
    if let Some(msn) = ctx.merchant_header() {
        headers.insert(MERCHANT_SERIAL_NUMBER.clone(), msn.clone());
    }
    if let (Some(psp), "psp") = (runtime.psp_id_header(), api.name) {
        headers.insert(PSP_ID.clone(), psp.clone());
    }
    for (name, value) in runtime.system_headers() {
        headers.insert(name.clone(), value.clone());
    }
    Ok(())
}

/// Adds one query parameter to a request being built; the generated clients call this
/// instead of [`reqwest::RequestBuilder::query`] (see `streamline_requests` in `xtask`).
///
/// An absent optional parameter serializes to nothing, and for that reqwest's `query` still
/// adds an empty query to the URL and removes it again. This leaves the builder as it is
/// then; anything else goes to reqwest's `query`, errors included.
pub fn query<T: serde::Serialize + ?Sized>(builder: reqwest::RequestBuilder, param: &T) -> reqwest::RequestBuilder {
    match serde_urlencoded::to_string(param) {
        Ok(pairs) if pairs.is_empty() => builder,
        _ => builder.query(param),
    }
}

/// Whether a call may be sent again after a failed attempt.
fn may_retry(request: &reqwest::Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE)
        || request.headers().contains_key(&IDEMPOTENCY_KEY)
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// A `Retry-After` value: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn bearer(request: &reqwest::Request) -> Option<String> {
    let v = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(str::to_owned)
}

/// Runs the attempts of one call.
pub async fn exec(
    ctx: &Context,
    http: &reqwest::Client,
    request: reqwest::Request,
    operation: &str,
) -> reqwest::Result<reqwest::Response> {
    let span = tracing::info_span!(
        "vipps.call",
        api = ctx.api().name,
        operation,
        method = %request.method(),
        msn = ctx.merchant_serial_number().map(|m| m.as_str()).unwrap_or("-"),
        attempt = field::Empty,
        status = field::Empty,
        latency_ms = field::Empty,
    );
    let started = Instant::now();
    let result = attempts(ctx, http, request, &span, started).instrument(span.clone()).await;
    // A disabled span (no subscriber wants it) records nothing; the events below may still
    // be wanted, by a subscriber that takes events but not spans, and check that themselves.
    if !span.is_disabled() {
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Ok(response) = &result {
            span.record("status", response.status().as_u16());
        }
    }
    match &result {
        Ok(response) => span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "call finished")),
        Err(e) => span.in_scope(|| tracing::debug!(timeout = e.is_timeout(), connect = e.is_connect(), "call failed")),
    }
    result
}

async fn attempts(
    ctx: &Context,
    http: &reqwest::Client,
    mut request: reqwest::Request,
    span: &tracing::Span,
    started: Instant,
) -> reqwest::Result<reqwest::Response> {
    let runtime = ctx.runtime();
    let timeouts = *runtime.timeouts();
    let mut progress = Progress {
        policy: *runtime.retry_policy(),
        deadline: timeouts.call.map(|d| started + d),
        retry_allowed: may_retry(&request),
        refetched: false,
        attempt: 0,
    };
    loop {
        progress.attempt += 1;
        span.record("attempt", progress.attempt);
        let spare = spare_copy(&request);
        let remaining = progress.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let limit = match (timeouts.attempt, remaining) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        };
        // On the request, not the client: the generated client's reqwest client may be one
        // the caller gave (`Client::new_with_client`), not the one the runtime built.
        *request.timeout_mut() = limit;
        let outcome = http.execute(request).await;
        // A response that is not an error is the answer. Everything else (401, retries,
        // error bodies, transport errors) is decided in `after_failure`, a boxed future, so
        // that its state does not make this one, moved and polled on every call, large.
        if let Ok(response) = &outcome {
            if !is_error(response.status()) {
                return outcome;
            }
        }
        match Box::pin(after_failure(ctx, outcome, spare, &mut progress)).await {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(next) => request = next,
        }
    }
}

/// A copy of `request` to send again if this attempt fails, or `None` if its body is a
/// stream and cannot be copied.
///
/// [`reqwest::Request::try_clone`] also copies the request's extensions, where reqwest keeps
/// the timeout, twice (a map allocation each). The only extension a generated client's
/// request carries is that timeout, and [`attempts`] sets it anew before each attempt, so a
/// request without a body is copied here without them. A request with a body goes through
/// `try_clone`, the only way to share the body's bytes instead of copying them.
fn spare_copy(request: &reqwest::Request) -> Option<reqwest::Request> {
    if request.body().is_some() {
        return request.try_clone();
    }
    let mut copy = reqwest::Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    Some(copy)
}

/// Where the attempts of a call stand.
struct Progress {
    policy: RetryPolicy,
    deadline: Option<Instant>,
    retry_allowed: bool,
    refetched: bool,
    attempt: u32,
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// Decides what follows an attempt that failed (an error status or a transport error):
/// the call's result, or the request to send next.
async fn after_failure(
    ctx: &Context,
    outcome: reqwest::Result<reqwest::Response>,
    spare: Option<reqwest::Request>,
    progress: &mut Progress,
) -> ControlFlow<reqwest::Result<reqwest::Response>, reqwest::Request> {
    let runtime = ctx.runtime();
    let Progress { policy, deadline, retry_allowed, .. } = *progress;
    let attempt = progress.attempt;
    let can_go_on = |wait: Duration| spare.is_some() && deadline.is_none_or(|d| Instant::now() + wait < d);
    // On a first 401: the token this attempt sent, read from the spare copy, whose headers
    // are the attempt's.
    let refused_token = match (&outcome, &spare) {
        (Ok(response), Some(spare)) if response.status() == StatusCode::UNAUTHORIZED && !progress.refetched => bearer(spare),
        _ => None,
    };
    match outcome {
        Ok(response) if refused_token.is_some() => {
            // The token was refused: forget it, fetch one new token, and send once more.
            progress.refetched = true;
            runtime.invalidate_token(&AccessToken::from_header(refused_token.as_deref().unwrap_or_default()));
            let Ok(token) = runtime.access_token().await else { return ControlFlow::Break(readable(response).await) };
            let mut next = spare.expect("checked above");
            if set_bearer(next.headers_mut(), &token).is_err() {
                return ControlFlow::Break(readable(response).await);
            }
            tracing::debug!("401 with the cached token; fetched a new one and sending again");
            progress.attempt -= 1;
            ControlFlow::Continue(next)
        }
        Ok(response) if retryable_status(response.status()) && retry_allowed && attempt < policy.max_attempts => {
            let wait = match retry_after(response.headers()) {
                Some(wait) if wait > policy.max_retry_after => return ControlFlow::Break(readable(response).await),
                Some(wait) => wait,
                None => policy.backoff(attempt),
            };
            if !can_go_on(wait) {
                return ControlFlow::Break(readable(response).await);
            }
            tracing::debug!(status = response.status().as_u16(), wait_ms = wait.as_millis() as u64, "retrying");
            drop(response);
            tokio::time::sleep(wait).await;
            ControlFlow::Continue(refresh_token(ctx, spare.expect("checked by can_go_on")).await)
        }
        Ok(response) => ControlFlow::Break(readable(response).await),
        Err(e) if (e.is_connect() || e.is_timeout() || e.is_request()) && retry_allowed && attempt < policy.max_attempts => {
            let wait = policy.backoff(attempt);
            if !can_go_on(wait) {
                return ControlFlow::Break(Err(e));
            }
            tracing::debug!(timeout = e.is_timeout(), wait_ms = wait.as_millis() as u64, "transport error; retrying");
            tokio::time::sleep(wait).await;
            ControlFlow::Continue(refresh_token(ctx, spare.expect("checked by can_go_on")).await)
        }
        Err(e) => ControlFlow::Break(Err(e)),
    }
}

/// Puts the current token on a request that is about to be sent again, in case the cached
/// one was replaced meanwhile.
async fn refresh_token(ctx: &Context, mut request: reqwest::Request) -> reqwest::Request {
    if bearer(&request).is_some() {
        if let Ok(token) = ctx.runtime().access_token().await {
            let _ = set_bearer(request.headers_mut(), &token);
        }
    }
    request
}

/// Makes an error response's body JSON that [`Problem`](crate::Problem) reads: a body that is
/// empty or not JSON (a gateway's HTML or text) becomes `{status, title, detail}` with the
/// text kept in `detail`. Success responses pass unchanged.
async fn readable(response: reqwest::Response) -> reqwest::Result<reqwest::Response> {
    let status = response.status();
    if !is_error(status) {
        return Ok(response);
    }
    let version = response.version();
    let mut headers = response.headers().clone();
    let body = response.bytes().await?;
    let is_json = matches!(serde_json::from_slice::<serde_json::Value>(&body), Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)));
    let body = if is_json {
        body.to_vec()
    } else {
        let text = String::from_utf8_lossy(&body).trim().chars().take(2000).collect::<String>();
        let mut problem = serde_json::json!({
            "status": status.as_u16(),
            "title": status.canonical_reason().unwrap_or("Error"),
        });
        if !text.is_empty() {
            problem["detail"] = serde_json::Value::String(text);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        problem.to_string().into_bytes()
    };
    headers.remove(CONTENT_LENGTH);
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    Ok(reqwest::Response::from(rebuilt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(RETRY_AFTER, HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn absent_query_parameters_leave_the_url_alone() {
        use progenitor_client::QueryParam;
        let http = reqwest::Client::new();
        let url = |b: reqwest::RequestBuilder| b.build().unwrap().url().to_string();
        let base = "http://127.0.0.1:1/v3/agreements";
        let none: Option<String> = None;
        assert_eq!(url(query(http.get(base), &QueryParam::new("status", &none))), base);
        let status = Some("ACTIVE".to_string());
        let size = Some(10u32);
        let b = query(query(query(http.get(base), &QueryParam::new("status", &status)), &QueryParam::new("a", &none)), &QueryParam::new("pageSize", &size));
        assert_eq!(url(b), format!("{base}?status=ACTIVE&pageSize=10"));
        let spaced = Some("a b&c".to_string());
        assert_eq!(url(query(http.get(base), &QueryParam::new("q", &spaced))), format!("{base}?q=a+b%26c"));
        let many = vec!["A".to_string(), "B".to_string()];
        assert_eq!(url(query(http.get(base), &QueryParam::new("s", &many))), format!("{base}?s=A&s=B"));
        // The same URLs as reqwest's own `query` gives.
        assert_eq!(url(http.get(base).query(&QueryParam::new("s", &many))), format!("{base}?s=A&s=B"));
        assert_eq!(url(http.get(base).query(&QueryParam::new("status", &none))), base);
    }

    #[tokio::test]
    async fn non_json_error_bodies_become_problems() {
        let raw = http::Response::builder().status(502).body("<html>Bad gateway</html>").unwrap();
        let r = readable(reqwest::Response::from(raw)).await.unwrap();
        assert_eq!(r.status(), 502);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["status"], 502);
        assert_eq!(v["detail"], "<html>Bad gateway</html>");
        let raw = http::Response::builder().status(400).body(r#"{"title":"x"}"#).unwrap();
        let v: serde_json::Value = readable(reqwest::Response::from(raw)).await.unwrap().json().await.unwrap();
        assert_eq!(v, serde_json::json!({"title": "x"}));
    }
}
