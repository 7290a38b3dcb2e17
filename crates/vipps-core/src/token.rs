//! The access token cache: lazy, single-flight with one shared outcome, refreshed ahead of
//! expiry, invalidated on 401.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use reqwest::header::HeaderValue;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::Error;

/// The longest lifetime the cache believes: a token endpoint that claims more (or a number
/// too large for a clock) gets this. Vipps MobilePay tokens live one hour or less.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A bearer token. Its `Debug` does not show it.
///
/// It carries its `Authorization: Bearer …` header value, built once when the token arrives
/// and marked sensitive, so that a call only clones it (a reference count) instead of
/// formatting and validating the header again.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<str>,
    bearer: HeaderValue,
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
    }
}

impl Eq for AccessToken {}

impl AccessToken {
    /// A token as the token endpoint sent it; `None` unless it is visible ASCII (a JWT is),
    /// the only bytes every server reads the same way in a header.
    fn new(secret: &str) -> Option<Self> {
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut bearer = HeaderValue::from_str(&format!("Bearer {secret}")).ok()?;
        bearer.set_sensitive(true);
        Some(Self {
            secret: secret.into(),
            bearer,
        })
    }

    /// The token, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The `Authorization` header value (`Bearer …`, sensitive).
    pub(crate) fn bearer_header(&self) -> &HeaderValue {
        &self.bearer
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    /// From here on a call fetches a new token.
    refresh_at: Instant,
}

/// What every caller waiting on one token request gets: the token, when it was requested and
/// how long it lives; or the one failure, shared.
type Outcome = Result<(AccessToken, Instant, Duration), Arc<Error>>;

struct Inflight {
    generation: u64,
    outcome: Shared<BoxFuture<'static, Outcome>>,
}

/// Holds one token for one credential set and fetches a new one when it is missing or about
/// to expire.
///
/// Concurrent callers share one request: it runs as its own task, so a caller that gives up
/// (its time limit ran out) stops neither the request nor the other callers, and every
/// caller waiting on it gets its outcome, failure included. A failed request is not repeated
/// for each waiter; the next call after it starts a new one.
pub struct TokenCache {
    current: RwLock<Option<Cached>>,
    inflight: Mutex<Option<Inflight>>,
    margin: Duration,
    fetches: AtomicU64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("margin", &self.margin)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache that replaces a token `margin` before it expires, or at half its lifetime when
    /// that comes later (so that a short-lived token is still used for a while).
    pub fn new(margin: Duration) -> Self {
        Self {
            current: RwLock::new(None),
            inflight: Mutex::new(None),
            margin,
            fetches: AtomicU64::new(0),
        }
    }

    /// How many token requests were started.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// When a token fetched at `fetched_at` and living `lifetime` is replaced.
    fn refresh_at(&self, fetched_at: Instant, lifetime: Duration) -> Instant {
        let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
        let use_for = lifetime.saturating_sub(self.margin).max(lifetime / 2);
        fetched_at.checked_add(use_for).unwrap_or(fetched_at)
    }

    /// The cached token, if it is fresh enough.
    pub(crate) fn fresh(&self) -> Option<AccessToken> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The cached token, or the outcome of one request made by `fetch` (started here unless
    /// another caller's is under way). `fetch` returns the token and its lifetime.
    ///
    /// Must be called within a tokio runtime: the request runs as a task of its own.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(AccessToken, Duration), Error>> + Send + 'static,
    {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let (generation, outcome) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            // Fetched while this caller took the lock.
            if let Some(token) = self.fresh() {
                return Ok(token);
            }
            let finished = inflight.as_ref().and_then(|f| f.outcome.peek().cloned());
            match (inflight.as_ref(), finished) {
                // Under way: wait for it with the others.
                (Some(f), None) => (f.generation, f.outcome.clone()),
                // Finished while nobody waited: its token is kept if still fresh; a failure
                // nobody collected is not handed to a new caller.
                (Some(_), Some(Ok((token, fetched_at, lifetime))))
                    if Instant::now() < self.refresh_at(fetched_at, lifetime) =>
                {
                    *inflight = None;
                    self.store(&token, fetched_at, lifetime);
                    return Ok(token);
                }
                _ => {
                    let generation = self.fetches.fetch_add(1, Ordering::Relaxed) + 1;
                    let started = Instant::now();
                    let task = tokio::spawn(fetch());
                    let outcome = async move {
                        match task.await {
                            Ok(Ok((token, lifetime))) => Ok((token, started, lifetime)),
                            Ok(Err(e)) => Err(Arc::new(e)),
                            Err(_) => Err(Arc::new(Error::malformed(
                                None,
                                "the token request's task ended without an answer",
                            ))),
                        }
                    }
                    .boxed()
                    .shared();
                    *inflight = Some(Inflight {
                        generation,
                        outcome: outcome.clone(),
                    });
                    (generation, outcome)
                }
            }
        };
        let result = outcome.await;
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if inflight
            .as_ref()
            .is_some_and(|f| f.generation == generation)
        {
            *inflight = None;
            if let Ok((token, fetched_at, lifetime)) = &result {
                self.store(token, *fetched_at, *lifetime);
            }
        }
        drop(inflight);
        result
            .map(|(token, _, _)| token)
            .map_err(|e| shared_failure(&e))
    }

    fn store(&self, token: &AccessToken, fetched_at: Instant, lifetime: Duration) {
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "fetched a new access token"
        );
        let refresh_at = self.refresh_at(fetched_at, lifetime);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
    }

    /// Forgets `used` if it is still the cached token (a server refused it).
    pub fn invalidate(&self, used: &AccessToken) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|c| &c.token == used) {
            *guard = None;
        }
    }
}

/// One waiter's copy of a token request's failure, as an [`Error::TokenEndpoint`].
fn shared_failure(e: &Arc<Error>) -> Error {
    match &**e {
        Error::TokenEndpoint {
            status,
            problem,
            source,
        } => Error::TokenEndpoint {
            status: *status,
            problem: problem.clone(),
            source: source.clone(),
        },
        _ => Error::TokenEndpoint {
            status: None,
            problem: None,
            source: Some(e.clone()),
        },
    }
}

/// Reads a token endpoint's answer: the token and its lifetime.
///
/// `expires_in` may be a JSON number or a decimal string (`/accesstoken/get` sends strings,
/// `/miami/v1/token` numbers). A lifetime that is not a positive number of seconds is an
/// error; one longer than [`MAX_TOKEN_LIFETIME`] is cut to it. A token that is empty, too long
/// or not valid in a header is an error. No message repeats a value of the answer.
pub fn parse_token_response(body: &[u8]) -> Result<(AccessToken, Duration), Error> {
    let malformed = |message: &str| Error::malformed(None, format!("token response: {message}"));
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
    let token = match value.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(malformed("`access_token` is empty")),
        Some(_) => return Err(malformed("`access_token` is not a string")),
        None => return Err(malformed("no `access_token`")),
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed("`access_token` is longer than 16 KiB"));
    }
    let token = AccessToken::new(token)
        .ok_or_else(|| malformed("`access_token` holds characters other than visible ASCII"))?;
    let seconds = match value.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
        None => return Err(malformed("no `expires_in`")),
    };
    let lifetime = match seconds {
        Some(s) if s.is_finite() && s >= 1.0 => {
            Duration::try_from_secs_f64(s.floor()).unwrap_or(MAX_TOKEN_LIFETIME)
        }
        _ => {
            return Err(malformed(
                "`expires_in` is not a positive number of seconds",
            ))
        }
    };
    Ok((token, lifetime.min(MAX_TOKEN_LIFETIME)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> AccessToken {
        AccessToken::new(s).unwrap()
    }

    #[test]
    fn expires_in_as_string_or_number() {
        let (t, d) = parse_token_response(
            br#"{"access_token":"abc","expires_in":"3600","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!((t.secret(), d), ("abc", Duration::from_secs(3600)));
        let (_, d) = parse_token_response(br#"{"access_token":"abc","expires_in":900}"#).unwrap();
        assert_eq!(d, Duration::from_secs(900));
        for bad in [
            &br#"{"access_token":"abc","expires_in":"soon"}"#[..],
            b"<html>",
            br#"{"expires_in":1}"#,
            br#"{"access_token":"","expires_in":1}"#,
        ] {
            assert!(matches!(
                parse_token_response(bad),
                Err(Error::MalformedResponse { .. })
            ));
        }
    }

    #[test]
    fn hostile_lifetimes_are_rejected_or_capped() {
        for bad in [
            "0", "-5", "\"-1\"", "\"0\"", "null", "[]", "1e400", "\"NaN\"", "0.5",
        ] {
            let body = format!(r#"{{"access_token":"abc","expires_in":{bad}}}"#);
            assert!(
                matches!(
                    parse_token_response(body.as_bytes()),
                    Err(Error::MalformedResponse { .. })
                ),
                "{bad}"
            );
        }
        for huge in [
            "18446744073709551615",
            "\"18446744073709551616\"",
            "9.3e18",
            "1e300",
        ] {
            let body = format!(r#"{{"access_token":"abc","expires_in":{huge}}}"#);
            assert_eq!(
                parse_token_response(body.as_bytes()).unwrap().1,
                MAX_TOKEN_LIFETIME,
                "{huge}"
            );
        }
    }

    #[test]
    fn tokens_that_cannot_be_headers_are_rejected_without_being_shown() {
        for bad in ["sec\nret", "sec\u{7f}ret", "sécret"] {
            let body = serde_json::json!({"access_token": bad, "expires_in": 3600}).to_string();
            let err = parse_token_response(body.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::MalformedResponse { .. }));
            assert!(!format!("{err} {err:?}").contains("ret"), "{err:?}");
        }
        let body = serde_json::json!({"access_token": 12345678, "expires_in": 3600}).to_string();
        assert!(!parse_token_response(body.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("12345678"));
    }

    #[test]
    fn debug_hides_the_token() {
        let (t, _) =
            parse_token_response(br#"{"access_token":"supersecret","expires_in":1}"#).unwrap();
        assert!(!format!("{t:?}").contains("supersecret"));
        let header = t.bearer_header();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer supersecret");
        assert!(!format!("{header:?}").contains("supersecret"));
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_of_expiry_and_after_invalidation() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let n = Arc::new(AtomicU64::new(0));
        let fetch = || {
            let n = n.clone();
            async move {
                let i = n.fetch_add(1, Ordering::SeqCst);
                Ok((token(&format!("t{i}")), Duration::from_secs(3600)))
            }
        };
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(3600 - 61)).await;
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(2)).await;
        let t1 = cache.get(fetch).await.unwrap();
        assert_eq!(t1.secret(), "t1");
        cache.invalidate(&token("t0"));
        assert_eq!(
            cache.get(fetch).await.unwrap().secret(),
            "t1",
            "a stale token does not evict the current one"
        );
        cache.invalidate(&t1);
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t2");
        assert_eq!(cache.fetches(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_tokens_are_used_for_half_their_lifetime() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let fetch = || async { Ok((token("t"), Duration::from_secs(30))) };
        cache.get(fetch).await.unwrap();
        tokio::time::advance(Duration::from_secs(14)).await;
        cache.get(fetch).await.unwrap();
        assert_eq!(cache.fetches(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.get(fetch).await.unwrap();
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn huge_margins_and_lifetimes_do_not_overflow() {
        let cache = TokenCache::new(Duration::MAX);
        let fetch = || async { Ok((token("t"), Duration::MAX)) };
        cache.get(fetch).await.unwrap();
        cache.get(fetch).await.unwrap();
        assert_eq!(
            cache.fetches(),
            1,
            "half of the capped lifetime is still ahead"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_failure_is_shared_by_every_waiter_and_not_kept() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let calls = Arc::new(AtomicU64::new(0));
        let failing = {
            let calls = calls.clone();
            move || {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Err(Error::malformed(Some(200), "broken"))
                }
            }
        };
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                let failing = failing.clone();
                tokio::spawn(async move { cache.get(failing).await })
            })
            .collect();
        let started = Instant::now();
        for w in waiters {
            let err = w.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::TokenEndpoint {
                        source: Some(_),
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(5),
            "the waiters got the one outcome together"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The failure is not handed to the next caller.
        let ok = cache
            .get(|| async { Ok((token("t"), Duration::from_secs(3600))) })
            .await
            .unwrap();
        assert_eq!(ok.secret(), "t");
    }
}
