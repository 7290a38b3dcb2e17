//! The functions the generated clients' `send` methods call: [`send`] for the exchange,
//! [`decode`], [`error_response`] and [`unexpected_response`] for its result, and [`query`]
//! while building the request (see `return_sdk_errors` and `streamline_requests` in `xtask`).
//!
//! [`send`] prepares the request (the credentials the API's descriptor names, subscription key,
//! merchant serial number, the descriptor's extra headers such as `Psp-Id`, `Vipps-System-*`,
//! idempotency key) and runs the attempts: retries with backoff, one token
//! refetch on 401 where a resend is safe, time limits over everything the call waits for, the
//! body read within the size limit, and a tracing span. Every failure is an [`Error`].

use std::ops::ControlFlow;

use progenitor_client::ResponseValue;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{field, Instrument};

use crate::api::{Auth, ManagedHeader, OperationDescriptor};
use crate::config::{IdempotencyKey, RetryPolicy};
use crate::context::{ClientAuth, Context};
use crate::error::Error;
use crate::exchange::{
    exchange, problem_of, retry_wait, retryable_status, Deadline,
};
pub use crate::exchange::Response;
use crate::headers::{
    CLIENT_ID, CLIENT_SECRET, IDEMPOTENCY_KEY, MERCHANT_SERIAL_NUMBER, PSP_ID, SUBSCRIPTION_KEY,
};
use crate::token::AccessToken;

/// Prepares a request before its first attempt and returns the token it carries, if any.
///
/// The values of the managed headers are built once (by the runtime, the context and the
/// token cache) and only cloned here: a call does not format or validate them again.
async fn prepare(
    ctx: &Context,
    request: &mut reqwest::Request,
    op: Option<&OperationDescriptor>,
    deadline: &Deadline,
) -> Result<Option<AccessToken>, Error> {
    let runtime = ctx.runtime();
    let api = ctx.api();
    let headers = request.headers_mut();
    // Validate the caller's input first: nothing, not even a token request, goes out on bad input.
    if op.is_some_and(|op| op.idempotency_key) {
        match headers.get(&IDEMPOTENCY_KEY) {
            Some(given) => {
                let given = given
                    .to_str()
                    .map_err(|_| Error::invalid_input("Idempotency-Key is not valid ASCII"))?;
                IdempotencyKey::validate(given)?;
            }
            None => {
                let key = HeaderValue::from_str(IdempotencyKey::generate().as_str())
                    .map_err(|_| Error::invalid_input("Idempotency-Key"))?;
                headers.insert(IDEMPOTENCY_KEY.clone(), key);
            }
        }
    }
    // How the call authenticates and which extra headers it takes come from the descriptor
    // the generator wrote from `openapi/manifest.toml`, never from the API's name.
    let token = match op.map_or(api.auth, |o| o.auth) {
        Auth::ClientHeaders => {
            headers.insert(CLIENT_ID.clone(), runtime.client_id_header().clone());
            headers.insert(
                CLIENT_SECRET.clone(),
                runtime.client_secret_header().clone(),
            );
            headers.insert(
                SUBSCRIPTION_KEY.clone(),
                runtime.subscription_key_header().clone(),
            );
            None
        }
        Auth::Basic => match ctx.client_auth() {
            ClientAuth::Basic => {
                headers.insert(AUTHORIZATION, runtime.basic_header().clone());
                None
            }
            ClientAuth::Post => {
                add_client_to_form(request, runtime)?;
                None
            }
        },
        Auth::UserToken => {
            let bearer = ctx.user_token_header().ok_or_else(|| {
                Error::invalid_input("this operation needs the user's access token: make the client with a user token")
            })?;
            headers.insert(AUTHORIZATION, bearer.clone());
            headers.insert(SUBSCRIPTION_KEY.clone(), runtime.subscription_key_header().clone());
            None
        }
        Auth::None => None,
        Auth::BearerToken => {
            let token = current_token(ctx, deadline).await?;
            let headers = request.headers_mut();
            headers.insert(AUTHORIZATION, token.bearer_header().clone());
            headers.insert(
                SUBSCRIPTION_KEY.clone(),
                runtime.subscription_key_header().clone(),
            );
            Some(token)
        }
    };
    let headers = request.headers_mut();
    if let Some(msn) = ctx.merchant_header() {
        headers.insert(MERCHANT_SERIAL_NUMBER.clone(), msn.clone());
    }
    for header in api.headers {
        match header {
            ManagedHeader::PspId => {
                if let Some(psp) = runtime.psp_id_header() {
                    headers.insert(PSP_ID.clone(), psp.clone());
                }
            }
        }
    }
    for (name, value) in runtime.system_headers() {
        headers.insert(name.clone(), value.clone());
    }
    Ok(token)
}

/// `client_secret_post`: appends `client_id` and `client_secret` to a form body. Anything but a
/// form body in memory is refused, so the secret never goes where the server does not read it.
fn add_client_to_form(request: &mut reqwest::Request, runtime: &crate::Runtime) -> Result<(), Error> {
    let is_form = request
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let body = request.body().and_then(|b| b.as_bytes()).map(<[u8]>::to_vec);
    let (true, Some(mut body)) = (is_form, body) else {
        return Err(Error::invalid_input("client_secret_post needs a form body (application/x-www-form-urlencoded)"));
    };
    // The runtime's credentials are the ones sent: a body that names a client itself would send
    // two (which servers refuse, or read either of).
    if serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .map_err(|_| Error::invalid_input("the form body does not decode"))?
        .iter()
        .any(|(k, _)| k == "client_id" || k == "client_secret")
    {
        return Err(Error::invalid_input(
            "with client_secret_post the runtime sends client_id and client_secret; leave them out of the body",
        ));
    }
    let field = |v: &HeaderValue| v.to_str().map(str::to_owned).map_err(|_| Error::invalid_input("the client credentials are not ASCII"));
    let pairs = [("client_id", field(runtime.client_id_header())?), ("client_secret", field(runtime.client_secret_header())?)];
    let extra = serde_urlencoded::to_string(pairs).map_err(|_| Error::invalid_input("the client credentials do not form-encode"))?;
    if !body.is_empty() {
        body.push(b'&');
    }
    body.extend_from_slice(extra.as_bytes());
    let length = HeaderValue::from(body.len());
    *request.body_mut() = Some(body.into());
    request.headers_mut().insert(reqwest::header::CONTENT_LENGTH, length);
    Ok(())
}

/// The cached token, or one fetched (or waited for) within the call's deadline.
async fn current_token(ctx: &Context, deadline: &Deadline) -> Result<AccessToken, Error> {
    let runtime = ctx.runtime();
    match runtime.token_cache().fresh() {
        Some(token) => Ok(token),
        None => deadline.run(runtime.access_token()).await,
    }
}

/// Adds one query parameter to a request being built; the generated clients call this
/// instead of [`reqwest::RequestBuilder::query`] (see `streamline_requests` in `xtask`).
///
/// An absent optional parameter serializes to nothing, and for that reqwest's `query` still
/// adds an empty query to the URL and removes it again. This leaves the builder as it is
/// then; anything else goes to reqwest's `query`, errors included.
pub fn query<T: serde::Serialize + ?Sized>(
    builder: reqwest::RequestBuilder,
    param: &T,
) -> reqwest::RequestBuilder {
    match serde_urlencoded::to_string(param) {
        Ok(pairs) if pairs.is_empty() => builder,
        _ => builder.query(param),
    }
}

/// The `serialize_with` of the `Unknown(String)` variant that `cargo xtask codegen` adds to
/// the enums a response can hold (see `open_enums` in `xtask`): a value the SDK does not know
/// is kept when read, but never written, so a request sends only the values the API lists.
pub fn refuse_unknown<S: serde::Serializer>(value: &str, _serializer: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom(format!(
        "`{value}` is a value the API sent that this SDK does not know; it is not sent"
    )))
}

/// Reads a string of digits from a JSON string or a non-negative JSON integer, for the string
/// types whose pattern admits only digits (Management sends `msn` as a number in its sales
/// unit lists; see `open_enums` in `xtask`). The generated type checks the result as usual.
pub fn digit_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Digits;
    impl serde::de::Visitor<'_> for Digits {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or a non-negative integer")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_any(Digits)
}

/// Bounds checks for the integer fields that have a `minimum` or `maximum` in the spec, which
/// typify does not enforce: `cargo xtask codegen` (`range-notes` and `range_checks` in `xtask`)
/// gives such a field these functions as its serde `deserialize_with` and `serialize_with`, so
/// a value out of range neither decodes nor is sent. An absent bound is `i64::MIN`/`i64::MAX`.
pub mod range {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// An integer a bound applies to.
    pub trait Bounded: std::fmt::Display {
        /// The value, widened.
        fn widened(&self) -> i128;
    }

    macro_rules! bounded {
        ($($t:ty),*) => {$(
            impl Bounded for $t {
                fn widened(&self) -> i128 {
                    i128::from(*self)
                }
            }
        )*};
    }
    bounded!(i8, i16, i32, i64, u8, u16, u32, u64);

    macro_rules! bounded_non_zero {
        ($($t:ty),*) => {$(
            impl Bounded for $t {
                fn widened(&self) -> i128 {
                    i128::from(self.get())
                }
            }
        )*};
    }
    bounded_non_zero!(
        std::num::NonZeroU8,
        std::num::NonZeroU16,
        std::num::NonZeroU32,
        std::num::NonZeroU64,
        std::num::NonZeroI32,
        std::num::NonZeroI64
    );

    fn check<T: Bounded>(value: &T, min: i64, max: i64) -> Result<(), String> {
        let v = value.widened();
        if v < i128::from(min) {
            Err(format!("{value} is less than the minimum {min}"))
        } else if v > i128::from(max) {
            Err(format!("{value} is greater than the maximum {max}"))
        } else {
            Ok(())
        }
    }

    /// Reads a value and checks it against `MIN..=MAX`.
    pub fn deserialize<'de, D, T, const MIN: i64, const MAX: i64>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Bounded,
    {
        let value = T::deserialize(deserializer)?;
        check(&value, MIN, MAX).map_err(serde::de::Error::custom)?;
        Ok(value)
    }

    /// Writes a value that is within `MIN..=MAX`, and fails on any other.
    pub fn serialize<T, S, const MIN: i64, const MAX: i64>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Bounded,
        S: Serializer,
    {
        check(value, MIN, MAX).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }

    /// [`deserialize`] for an optional field.
    pub fn deserialize_option<'de, D, T, const MIN: i64, const MAX: i64>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Bounded,
    {
        let value = Option::<T>::deserialize(deserializer)?;
        if let Some(v) = &value {
            check(v, MIN, MAX).map_err(serde::de::Error::custom)?;
        }
        Ok(value)
    }

    /// [`serialize`] for an optional field.
    pub fn serialize_option<T, S, const MIN: i64, const MAX: i64>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Bounded,
        S: Serializer,
    {
        if let Some(v) = value {
            check(v, MIN, MAX).map_err(serde::ser::Error::custom)?;
        }
        value.serialize(serializer)
    }
}

/// Whether a call may be sent again after a failed attempt.
fn may_retry(request: &reqwest::Request) -> bool {
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    ) || request.headers().contains_key(&IDEMPOTENCY_KEY)
}

/// Sends one call of a generated client: prepares the request and runs its attempts. The
/// response comes back with its body read; an error status is left to the generated code,
/// which hands it to [`error_response`].
pub async fn send(
    ctx: &Context,
    http: &reqwest::Client,
    request: reqwest::Request,
    operation: &str,
) -> Result<Response, Error> {
    // The span names the operation by its published operationId (as the Vipps MobilePay
    // documentation does), not by the generated method's name, which the manifest may rename.
    // Looked up once per call; `prepare` reads the same descriptor.
    let op = ctx.api().operation(operation);
    let published = op.map_or(operation, |o| o.operation_id);
    let span = tracing::info_span!(
        "vipps.call",
        api = ctx.api().name,
        operation = published,
        method = %request.method(),
        msn = ctx.merchant_serial_number().map(|m| m.as_str()).unwrap_or("-"),
        attempt = field::Empty,
        status = field::Empty,
        latency_ms = field::Empty,
    );
    let started = Instant::now();
    let result = call(ctx, http, request, op, &span)
        .instrument(span.clone())
        .await;
    // A disabled span (no subscriber wants it) records nothing; the events below may still
    // be wanted, by a subscriber that takes events but not spans, and check that themselves.
    if !span.is_disabled() {
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Ok(response) = &result {
            span.record("status", response.status().as_u16());
        }
    }
    match &result {
        Ok(response) => {
            span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "call finished"))
        }
        Err(e) => span.in_scope(|| tracing::debug!(error = %e, "call failed")),
    }
    result
}

async fn call(
    ctx: &Context,
    http: &reqwest::Client,
    mut request: reqwest::Request,
    op: Option<&OperationDescriptor>,
    span: &tracing::Span,
) -> Result<Response, Error> {
    let runtime = ctx.runtime();
    let timeouts = *runtime.timeouts();
    let deadline = Deadline::new(timeouts.call);
    let token = prepare(ctx, &mut request, op, &deadline).await?;
    let mut progress = Progress {
        policy: *runtime.retry_policy(),
        deadline,
        retry_allowed: may_retry(&request),
        refetched: false,
        attempt: 0,
        token,
    };
    loop {
        progress.attempt += 1;
        span.record("attempt", progress.attempt);
        let spare = spare_copy(&request);
        let limit = progress.deadline.attempt_limit(timeouts.attempt);
        let outcome = exchange(http, request, limit, runtime.max_response_size(), timeouts.connect).await;
        // A response that is not an error is the answer. Everything else (401, retries,
        // transport errors) is decided in `after_failure`, a boxed future, so that its state
        // does not make this one, moved and polled on every call, large.
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
/// [`reqwest::Request::try_clone`] also copies the request's extensions (a map allocation).
/// A generated client's request carries none that matter, so a request without a body is
/// copied here without them. A request with a body goes through `try_clone`, the only way to
/// share the body's bytes instead of copying them.
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
    deadline: Deadline,
    retry_allowed: bool,
    refetched: bool,
    attempt: u32,
    /// The token the request carries, when it carries one.
    token: Option<AccessToken>,
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// Decides what follows an attempt that failed (an error status or an error): the call's
/// result, or the request to send next.
async fn after_failure(
    ctx: &Context,
    outcome: Result<Response, Error>,
    spare: Option<reqwest::Request>,
    progress: &mut Progress,
) -> ControlFlow<Result<Response, Error>, reqwest::Request> {
    let runtime = ctx.runtime();
    let Progress {
        policy,
        deadline,
        retry_allowed,
        attempt,
        ..
    } = *progress;
    let wait = match &outcome {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !progress.refetched => {
            let Some(refused) = progress.token.take() else {
                return ControlFlow::Break(outcome);
            };
            // The token was refused: forget it. Fetch a new one and send once more only if
            // the request may be sent twice; otherwise the 401 is the answer.
            runtime.invalidate_token(&refused);
            let (true, Some(mut next)) = (retry_allowed, spare) else {
                return ControlFlow::Break(outcome);
            };
            progress.refetched = true;
            let token = match deadline.run(runtime.access_token()).await {
                Ok(token) => token,
                Err(e) => return ControlFlow::Break(Err(e)),
            };
            next.headers_mut()
                .insert(AUTHORIZATION, token.bearer_header().clone());
            progress.token = Some(token);
            tracing::debug!("401 with the cached token; fetched a new one and sending again");
            progress.attempt -= 1;
            return ControlFlow::Continue(next);
        }
        Ok(response) if retryable_status(response.status()) && retry_allowed => {
            retry_wait(response.headers(), &policy, attempt)
        }
        Ok(_) => None,
        // A failure before anything reached the server may be retried for any request.
        Err(e) if (retry_allowed && e.may_retry()) || e.nothing_was_sent() => {
            Some(policy.backoff(attempt))
        }
        Err(_) => None,
    };
    let (Some(wait), Some(mut next)) = (wait, spare) else {
        return ControlFlow::Break(outcome);
    };
    if attempt >= policy.max_attempts || !deadline.leaves(wait) {
        return ControlFlow::Break(outcome);
    }
    match &outcome {
        Ok(response) => tracing::debug!(
            status = response.status().as_u16(),
            wait_ms = wait.as_millis() as u64,
            "retrying"
        ),
        Err(e) => tracing::debug!(error = %e, wait_ms = wait.as_millis() as u64, "retrying"),
    }
    drop(outcome);
    tokio::time::sleep(wait).await;
    // The cached token may have been replaced meanwhile.
    if progress.token.is_some() {
        match current_token(ctx, &deadline).await {
            Ok(token) => {
                next.headers_mut()
                    .insert(AUTHORIZATION, token.bearer_header().clone());
                progress.token = Some(token);
            }
            Err(e) => return ControlFlow::Break(Err(e)),
        }
    }
    ControlFlow::Continue(next)
}

/// Reads a success response's JSON body into `T`. A body that does not decode is an
/// [`Error::MalformedResponse`] naming the JSON path of the value at fault.
pub async fn decode<T: DeserializeOwned>(response: Response) -> Result<ResponseValue<T>, Error> {
    let (status, headers, body) = response.into_parts();
    let mut de = serde_json::Deserializer::from_slice(&body);
    let malformed = |path: Option<String>, e: &serde_json::Error| Error::MalformedResponse {
        status: Some(status.as_u16()),
        path,
        message: describe(e),
    };
    let inner: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        malformed((path != ".").then_some(path), e.inner())
    })?;
    de.end().map_err(|e| malformed(None, &e))?;
    Ok(ResponseValue::new(inner, status, headers))
}

/// What a JSON error says, without the value it quotes: a response may carry a token or
/// personal data, and an error message is logged.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    let expected = text
        .split_once(", expected ")
        .map(|(_, x)| format!(", expected {x}"))
        .unwrap_or_default();
    match e.classify() {
        Category::Data if text.starts_with("invalid type") => format!("invalid type{expected}"),
        Category::Data if text.starts_with("invalid value") => format!("invalid value{expected}"),
        Category::Data if text.starts_with("unknown variant") => {
            format!("unknown variant{expected}")
        }
        Category::Data
            if text.starts_with("missing field")
                || text.starts_with("invalid length")
                || text.starts_with("unknown field")
                || text.starts_with("duplicate field") =>
        {
            text.to_owned()
        }
        Category::Data => "a value does not have the documented form".to_owned(),
        Category::Syntax | Category::Eof => format!(
            "not valid JSON ({text}, line {} column {})",
            e.line(),
            e.column()
        ),
        Category::Io => "the body could not be read".to_owned(),
    }
}

/// The [`Error`] of an error status: [`Error::Authentication`] for 401, [`Error::Api`]
/// otherwise, with the body read as a [`Problem`](crate::Problem).
pub async fn error_response(response: Response) -> Error {
    let status = response.status().as_u16();
    let problem = Box::new(problem_of(response));
    if status == 401 {
        Error::Authentication {
            status: Some(status),
            message: problem.summary(),
            problem: Some(problem),
        }
    } else {
        Error::Api { status, problem }
    }
}

/// A response with no body to read, as progenitor's `ResponseValue::empty` gives it.
pub fn empty(response: Response) -> ResponseValue<()> {
    let (status, headers, _) = response.into_parts();
    ResponseValue::new((), status, headers)
}

/// A response whose body is not JSON (an image, text), as progenitor's
/// `ResponseValue::stream` gives it: the bytes already read, as one chunk.
pub fn stream(response: Response) -> ResponseValue<progenitor_client::ByteStream> {
    let (status, headers, body) = response.into_parts();
    let chunks = futures::stream::once(std::future::ready(Ok(body)));
    ResponseValue::new(progenitor_client::ByteStream::new(Box::pin(chunks)), status, headers)
}

/// The [`Error`] of a request a generated client could not build (a form body that does not
/// serialize).
pub fn request_error(e: progenitor_client::Error<crate::Problem>) -> Error {
    match e {
        progenitor_client::Error::InvalidRequest(message) => Error::invalid_input(message),
        other => Error::invalid_input(format!("the request could not be built: {other}")),
    }
}

/// The [`Error`] of a status the spec does not document.
pub async fn unexpected_response(response: Response) -> Error {
    let status = response.status();
    if status.is_success() {
        Error::malformed(
            Some(status.as_u16()),
            "a success status the API does not document",
        )
    } else {
        error_response(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_query_parameters_leave_the_url_alone() {
        use progenitor_client::QueryParam;
        let http = reqwest::Client::new();
        let url = |b: reqwest::RequestBuilder| b.build().unwrap().url().to_string();
        let base = "http://127.0.0.1:1/v3/agreements";
        let none: Option<String> = None;
        assert_eq!(
            url(query(http.get(base), &QueryParam::new("status", &none))),
            base
        );
        let status = Some("ACTIVE".to_string());
        let size = Some(10u32);
        let b = query(
            query(
                query(http.get(base), &QueryParam::new("status", &status)),
                &QueryParam::new("a", &none),
            ),
            &QueryParam::new("pageSize", &size),
        );
        assert_eq!(url(b), format!("{base}?status=ACTIVE&pageSize=10"));
        let spaced = Some("a b&c".to_string());
        assert_eq!(
            url(query(http.get(base), &QueryParam::new("q", &spaced))),
            format!("{base}?q=a+b%26c")
        );
        let many = vec!["A".to_string(), "B".to_string()];
        assert_eq!(
            url(query(http.get(base), &QueryParam::new("s", &many))),
            format!("{base}?s=A&s=B")
        );
        // The same URLs as reqwest's own `query` gives.
        assert_eq!(
            url(http.get(base).query(&QueryParam::new("s", &many))),
            format!("{base}?s=A&s=B")
        );
        assert_eq!(
            url(http.get(base).query(&QueryParam::new("status", &none))),
            base
        );
    }

    /// The headers `prepare` sets come from the descriptor: an API named anything that
    /// declares `Psp-Id`, Basic auth and one operation on client-id/secret headers gets them.
    #[tokio::test]
    async fn headers_follow_the_descriptor_not_the_name() {
        use crate::api::{ApiDescriptor, Environments, OperationDescriptor, OperationStatus};
        const fn op(method_name: &'static str, auth: Auth) -> OperationDescriptor {
            OperationDescriptor {
                method_name,
                operation_id: method_name,
                http_method: "POST",
                path: "/",
                status: OperationStatus::Current,
                idempotency_key: false,
                auth,
            }
        }
        static API: ApiDescriptor = ApiDescriptor {
            name: "anything-at-all",
            title: "t",
            version: "1",
            auth: Auth::Basic,
            headers: &[ManagedHeader::PspId],
            environments: Environments::ALL,
            operations: &[op("basic_op", Auth::Basic), op("headers_op", Auth::ClientHeaders), op("open_op", Auth::None)],
        };
        static PLAIN: ApiDescriptor = ApiDescriptor { name: "psp", headers: &[], ..API };
        let runtime = crate::Runtime::builder()
            .client_id("id-1")
            .client_secret("secret-1")
            .subscription_key("sub-1")
            .psp_id("psp-1")
            .base_url("http://127.0.0.1:1")
            .build()
            .unwrap();
        let prepared = |api: &'static ApiDescriptor, operation: &'static str| {
            let runtime = runtime.clone();
            async move {
                let ctx = Context::new(runtime, api);
                let mut request = reqwest::Request::new(Method::POST, "http://127.0.0.1:1/".parse().unwrap());
                let token = prepare(&ctx, &mut request, ctx.api().operation(operation), &Deadline::new(None)).await.unwrap();
                assert!(token.is_none(), "no bearer token for {operation}");
                request.headers().clone()
            }
        };
        let basic = prepared(&API, "basic_op").await;
        use base64::Engine as _;
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("id-1:secret-1"));
        assert_eq!(basic[AUTHORIZATION], expected.as_str());
        assert_eq!(basic[&PSP_ID], "psp-1");
        assert!(!basic.contains_key(&CLIENT_ID) && !basic.contains_key(&SUBSCRIPTION_KEY));
        let with_headers = prepared(&API, "headers_op").await;
        assert_eq!(with_headers[&CLIENT_ID], "id-1");
        assert_eq!(with_headers[&CLIENT_SECRET], "secret-1");
        assert_eq!(with_headers[&SUBSCRIPTION_KEY], "sub-1");
        assert_eq!(with_headers[&PSP_ID], "psp-1");
        assert!(!with_headers.contains_key(AUTHORIZATION));
        // An operation the table does not list takes the API's default.
        let unlisted = prepared(&API, "not_in_the_table").await;
        assert_eq!(unlisted[AUTHORIZATION], expected.as_str());
        let open = prepared(&API, "open_op").await;
        assert!(!open.contains_key(AUTHORIZATION) && !open.contains_key(&CLIENT_ID) && !open.contains_key(&SUBSCRIPTION_KEY));
        // Named `psp` but declaring no `Psp-Id`: none is sent.
        let plain = prepared(&PLAIN, "basic_op").await;
        assert!(!plain.contains_key(&PSP_ID));
    }

    /// `UserToken` sends the context's user token (and the subscription key), never the
    /// runtime's credentials, and refuses without one; `ClientAuth::Post` moves the client id
    /// and secret of a `Basic` operation into its form body, and refuses any other body.
    #[tokio::test]
    async fn user_tokens_and_client_secret_post() {
        use crate::api::{ApiDescriptor, Environments, OperationDescriptor, OperationStatus};
        const fn op(method_name: &'static str, auth: Auth) -> OperationDescriptor {
            OperationDescriptor {
                method_name,
                operation_id: method_name,
                http_method: "POST",
                path: "/",
                status: OperationStatus::Current,
                idempotency_key: false,
                auth,
            }
        }
        static API: ApiDescriptor = ApiDescriptor {
            name: "oidc",
            title: "t",
            version: "1",
            auth: Auth::UserToken,
            headers: &[],
            environments: Environments::ALL,
            operations: &[op("token", Auth::Basic), op("userinfo", Auth::UserToken)],
        };
        let runtime = crate::Runtime::builder()
            .client_id("id-1")
            .client_secret("secret &=1")
            .subscription_key("sub-1")
            .base_url("http://127.0.0.1:1")
            .build()
            .unwrap();
        let request = |body: Option<(&str, &str)>| {
            let mut r = reqwest::Request::new(Method::POST, "http://127.0.0.1:1/".parse().unwrap());
            if let Some((content_type, text)) = body {
                r.headers_mut().insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
                *r.body_mut() = Some(text.to_owned().into());
            }
            r
        };
        let prepare_with = |ctx: Context, mut r: reqwest::Request, operation: &'static str| async move {
            prepare(&ctx, &mut r, ctx.api().operation(operation), &Deadline::new(None)).await.map(|_| r)
        };
        // No user token: refused, before anything else happens.
        let e = prepare_with(Context::new(runtime.clone(), &API), request(None), "userinfo").await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        let ctx = Context::new(runtime.clone(), &API).with_user_token("user-tok").unwrap();
        assert!(!format!("{ctx:?}").contains("user-tok"));
        let sent = prepare_with(ctx.clone(), request(None), "userinfo").await.unwrap();
        assert_eq!(sent.headers()[AUTHORIZATION], "Bearer user-tok");
        assert!(sent.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(sent.headers()[&SUBSCRIPTION_KEY], "sub-1");
        assert!(Context::new(runtime.clone(), &API).with_user_token("a\r\nb").is_err());
        assert!(Context::new(runtime.clone(), &API).with_user_token("").is_err());
        // Basic by default; Post puts the credentials in the form, form-encoded.
        let basic = prepare_with(ctx.clone(), request(Some(("application/x-www-form-urlencoded", "grant_type=x"))), "token").await.unwrap();
        assert!(basic.headers()[AUTHORIZATION].to_str().unwrap().starts_with("Basic "));
        let post = ctx.clone().with_client_auth(ClientAuth::Post);
        let form = "grant_type=authorization_code&code=c";
        let sent = prepare_with(post.clone(), request(Some(("application/x-www-form-urlencoded", form))), "token").await.unwrap();
        assert!(!sent.headers().contains_key(AUTHORIZATION));
        let body = sent.body().and_then(|b| b.as_bytes()).unwrap();
        assert_eq!(body, b"grant_type=authorization_code&code=c&client_id=id-1&client_secret=secret+%26%3D1");
        assert_eq!(sent.headers()[reqwest::header::CONTENT_LENGTH], body.len().to_string().as_str());
        // A form that names a client itself: refused rather than sending two.
        let named = "grant_type=authorization_code&code=c&client_id=other";
        let e = prepare_with(post.clone(), request(Some(("application/x-www-form-urlencoded", named))), "token").await.unwrap_err();
        assert!(matches!(&e, Error::InvalidInput { message } if message.contains("leave them out")), "{e:?}");
        // A JSON body or none: refused rather than sending the secret where it is not read.
        for body in [Some(("application/json", "{}")), None] {
            let e = prepare_with(post.clone(), request(body), "token").await.unwrap_err();
            assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        }
    }

    #[tokio::test]
    async fn decode_errors_name_the_path_and_not_the_value() {
        #[derive(serde::Deserialize, Debug)]
        struct Charge {
            #[allow(dead_code)]
            amount: u32,
        }
        let raw = |body: &'static str| Response::new(StatusCode::OK, Default::default(), bytes::Bytes::from_static(body.as_bytes()));
        let err = decode::<Vec<Charge>>(raw(r#"[{"amount":1},{"amount":"secret-value"}]"#))
            .await
            .unwrap_err();
        match &err {
            Error::MalformedResponse {
                status: Some(200),
                path: Some(path),
                message,
            } => {
                assert_eq!(path, "[1].amount");
                assert!(
                    message.starts_with("invalid type") && message.contains("u32"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{err} {err:?}").contains("secret-value"));
        assert!(matches!(
            decode::<Vec<Charge>>(raw("[] trailing")).await,
            Err(Error::MalformedResponse { .. })
        ));
    }
}
