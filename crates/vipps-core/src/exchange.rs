//! One HTTP exchange under the runtime's rules, shared by API calls and token requests:
//! never follow a redirect, read the whole body within the time limit and the size limit,
//! and say which limit ran out.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::error::{Error, Limit, TransportKind};
use crate::problem::Problem;

/// The end of a call's time ([`Timeouts::call`](crate::Timeouts::call)), if it has one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    call: Duration,
}

impl Deadline {
    /// A deadline `call` from now; a limit too long for the clock is no limit.
    pub(crate) fn new(call: Option<Duration>) -> Self {
        Self {
            at: call.and_then(|d| Instant::now().checked_add(d)),
            call: call.unwrap_or_default(),
        }
    }

    /// Runs `work`, or gives up with [`Limit::Call`] at the deadline.
    pub(crate) async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.at {
            Some(at) => tokio::time::timeout_at(at, work)
                .await
                .unwrap_or(Err(Error::Timeout {
                    limit: Limit::Call,
                    after: self.call,
                })),
            None => work.await,
        }
    }

    /// The limit of an attempt starting now: its own limit or the rest of the call, whichever
    /// ends first.
    pub(crate) fn attempt_limit(
        &self,
        attempt: Option<Duration>,
    ) -> Option<(Instant, Limit, Duration)> {
        let own = attempt.and_then(|d| Some((Instant::now().checked_add(d)?, Limit::Attempt, d)));
        let call = self.at.map(|at| (at, Limit::Call, self.call));
        match (own, call) {
            (Some(own), Some(call)) => Some(if call.0 < own.0 { call } else { own }),
            (own, call) => own.or(call),
        }
    }

    /// Whether waiting `wait` from now still leaves time before the deadline.
    pub(crate) fn leaves(&self, wait: Duration) -> bool {
        self.at.is_none_or(|at| {
            Instant::now()
                .checked_add(wait)
                .is_some_and(|then| then < at)
        })
    }
}

/// Sends `request` and reads its whole response within `limit`. A `3xx`, or a response
/// that a caller-supplied client reached by following a redirect, is [`Error::Redirect`].
/// The body is read into memory, at most `max_body` bytes, so that a later read of it cannot
/// hang, fail or exceed the limit.
pub(crate) async fn exchange(
    http: &reqwest::Client,
    request: reqwest::Request,
    limit: Option<(Instant, Limit, Duration)>,
    max_body: u64,
    connect: Option<Duration>,
) -> Result<Response, Error> {
    // Boxed: the exchange (reqwest's request future and the body read) is the largest part
    // of a call's state, and every future that awaits it would otherwise hold and move it.
    let work = Box::pin(send_and_read(http, request, max_body, (connect, limit.map(|l| l.2))));
    match limit {
        Some((at, limit, after)) => tokio::time::timeout_at(at, work)
            .await
            .unwrap_or(Err(Error::Timeout { limit, after })),
        None => work.await,
    }
}

async fn send_and_read(
    http: &reqwest::Client,
    request: reqwest::Request,
    max_body: u64,
    limits: (Option<Duration>, Option<Duration>),
) -> Result<Response, Error> {
    let sent_to = request.url().clone();
    let response = http
        .execute(request)
        .await
        .map_err(|e| Error::from_reqwest(e, limits))?;
    let status = response.status();
    if status.is_redirection() {
        let location_host = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| sent_to.join(l).ok())
            .and_then(|u| u.host_str().map(str::to_owned));
        return Err(Error::Redirect {
            status: Some(status.as_u16()),
            location_host,
        });
    }
    if response.url() != &sent_to {
        // A caller-supplied client followed a redirect on its own.
        return Err(Error::Redirect {
            status: None,
            location_host: response.url().host_str().map(str::to_owned),
        });
    }
    buffer(response, max_body, limits).await
}

/// The response with its body read into memory.
async fn buffer(
    mut response: reqwest::Response,
    max_body: u64,
    limits: (Option<Duration>, Option<Duration>),
) -> Result<Response, Error> {
    let too_large = Error::ResponseTooLarge { limit: max_body };
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(too_large);
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let read_error = |e| match Error::from_reqwest(e, limits) {
        Error::Transport { source, .. } => Error::Transport {
            kind: TransportKind::Body,
            source,
        },
        other => other,
    };
    // Most bodies come in one chunk, which is kept as it is; more are copied together.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut len: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(read_error)? {
        len += chunk.len() as u64;
        if len > max_body {
            return Err(too_large);
        }
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(before)) => {
                let mut all = BytesMut::with_capacity(before.len() + chunk.len());
                all.extend_from_slice(&before);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
        }
    }
    let body = joined.map(BytesMut::freeze).or(first).unwrap_or_default();
    Ok(Response { status, headers, body })
}

/// A response whose body has been read whole: what [`hooks::send`](crate::hooks::send)
/// returns to a generated `send`, which decodes it with [`hooks::decode`](crate::hooks::decode)
/// or turns it into an error.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Response {
    /// A response made from its parts (for tests of code that takes one).
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self { status, headers, body }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Status, headers and body.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, Bytes) {
        (self.status, self.headers, self.body)
    }
}

/// An error response's body as a [`Problem`]: JSON as it is, anything else (a gateway's HTML
/// or text) as `{status, title, detail}` with the text kept in `detail`.
pub(crate) fn problem_of(response: Response) -> Problem {
    let (status, _, body) = response.into_parts();
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            Problem::from_value(v)
        }
        _ => {
            let text = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(2000)
                .collect::<String>();
            Problem {
                status: Some(status.as_u16()),
                title: Some(status.canonical_reason().unwrap_or("Error").to_owned()),
                detail: (!text.is_empty()).then_some(text),
                ..Default::default()
            }
        }
    }
}

/// Statuses a token request is tried again after: any server error, and 429.
pub(crate) fn token_retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Statuses an API call is tried again after (when it may be repeated).
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// How long to wait before the next attempt after a retryable status: the server's
/// `Retry-After` when it gave one within the policy's bound, else the backoff; `None` when
/// the server asks for longer than the policy allows.
pub(crate) fn retry_wait(
    headers: &HeaderMap,
    policy: &RetryPolicy,
    attempt: u32,
) -> Option<Duration> {
    match retry_after(headers) {
        Some(wait) if wait > policy.max_retry_after => None,
        Some(wait) => Some(wait),
        None => Some(policy.backoff(attempt)),
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("18446744073709551615"),
        );
        let unbounded = RetryPolicy {
            max_retry_after: Duration::MAX,
            ..Default::default()
        };
        assert_eq!(
            retry_wait(&h, &unbounded, 1),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_wait(&h, &RetryPolicy::default(), 1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_saturate() {
        let none = Deadline::new(Some(Duration::MAX));
        assert!(none.attempt_limit(Some(Duration::MAX)).is_none());
        assert!(none.leaves(Duration::MAX));
        let soon = Deadline::new(Some(Duration::from_secs(5)));
        assert!(
            !soon.leaves(Duration::MAX)
                && !soon.leaves(Duration::from_secs(5))
                && soon.leaves(Duration::from_secs(4))
        );
        assert_eq!(
            soon.attempt_limit(Some(Duration::from_secs(10))).unwrap().1,
            Limit::Call
        );
        assert_eq!(
            soon.attempt_limit(Some(Duration::from_secs(1))).unwrap().1,
            Limit::Attempt
        );
    }

    #[test]
    fn non_json_error_bodies_become_problems() {
        let raw = |status: u16, body: &'static str| Response::new(StatusCode::from_u16(status).unwrap(), HeaderMap::new(), Bytes::from_static(body.as_bytes()));
        let p = problem_of(raw(502, "<html>Bad gateway</html>"));
        assert_eq!(p.status, Some(502));
        assert_eq!(p.detail.as_deref(), Some("<html>Bad gateway</html>"));
        assert_eq!(
            problem_of(raw(400, r#"{"title":"x"}"#))
                .title
                .as_deref(),
            Some("x")
        );
    }
}
