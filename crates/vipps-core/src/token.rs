//! The access token cache: lazy, single-flight, refreshed ahead of expiry, invalidated on 401.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::Error;

/// A bearer token. Its `Debug` does not show it.
///
/// It carries its `Authorization: Bearer …` header value, built once when the token arrives
/// and marked sensitive, so that a call only clones it (a reference count) instead of
/// formatting and validating the header again.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<str>,
    /// `None` when the token cannot be a header value; using it is then an error.
    bearer: Option<HeaderValue>,
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
    }
}

impl Eq for AccessToken {}

impl AccessToken {
    fn new(secret: Arc<str>) -> Self {
        let bearer = HeaderValue::from_str(&format!("Bearer {secret}")).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Self { secret, bearer }
    }

    /// The token, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The `Authorization` header value (`Bearer …`, sensitive), or `None` if the token holds
    /// characters a header cannot.
    pub(crate) fn bearer_header(&self) -> Option<&HeaderValue> {
        self.bearer.as_ref()
    }

    pub(crate) fn from_header(value: &str) -> Self {
        Self::new(value.into())
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
    expires_at: Instant,
}

/// Holds one token for one credential set and fetches a new one when it is missing or about
/// to expire. Concurrent callers wait on one fetch.
pub struct TokenCache {
    current: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    margin: Duration,
    fetches: AtomicU64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").field("margin", &self.margin).field("fetches", &self.fetches()).finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache that refreshes `margin` before a token expires.
    pub fn new(margin: Duration) -> Self {
        Self { current: RwLock::new(None), refresh: tokio::sync::Mutex::new(()), margin, fetches: AtomicU64::new(0) }
    }

    /// How many times a token was fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached token, if it is fresh enough.
    pub(crate) fn fresh(&self) -> Option<AccessToken> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().filter(|c| Instant::now() + self.margin < c.expires_at).map(|c| c.token.clone())
    }

    /// The cached token, or a new one from `fetch` when there is none fresh enough.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(AccessToken, Duration), Error>>,
    {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _single_flight = self.refresh.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let started = Instant::now();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (token, lifetime) = fetch().await?;
        tracing::debug!(lifetime_s = lifetime.as_secs(), "fetched a new access token");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Cached { token: token.clone(), expires_at: started + lifetime });
        Ok(token)
    }

    /// Forgets `used` if it is still the cached token (a server refused it).
    pub fn invalidate(&self, used: &AccessToken) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|c| &c.token == used) {
            *guard = None;
        }
    }
}

/// A number given as a JSON number or a decimal string (`/accesstoken/get` sends strings,
/// `/miami/v1/token` numbers).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: Option<Seconds>,
}

/// Reads a token endpoint's answer: the token and its lifetime.
pub fn parse_token_response(body: &[u8]) -> Result<(AccessToken, Duration), Error> {
    let malformed = |message: String| Error::MalformedResponse { status: None, message };
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("token response is not the documented JSON: {e}")))?;
    if parsed.access_token.is_empty() {
        return Err(malformed("token response has an empty access_token".into()));
    }
    let seconds = match parsed.expires_in {
        Some(Seconds::Number(n)) => n,
        Some(Seconds::Text(s)) => {
            s.trim().parse().map_err(|_| malformed(format!("token response expires_in `{s}` is not a number of seconds")))?
        }
        None => return Err(malformed("token response has no expires_in".into())),
    };
    Ok((AccessToken::new(parsed.access_token.into()), Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_as_string_or_number() {
        let (t, d) = parse_token_response(br#"{"access_token":"abc","expires_in":"3600","token_type":"Bearer"}"#).unwrap();
        assert_eq!((t.secret(), d), ("abc", Duration::from_secs(3600)));
        let (_, d) = parse_token_response(br#"{"access_token":"abc","expires_in":900}"#).unwrap();
        assert_eq!(d, Duration::from_secs(900));
        for bad in [&br#"{"access_token":"abc","expires_in":"soon"}"#[..], b"<html>", br#"{"expires_in":1}"#, br#"{"access_token":"","expires_in":1}"#] {
            assert!(matches!(parse_token_response(bad), Err(Error::MalformedResponse { .. })));
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let (t, _) = parse_token_response(br#"{"access_token":"supersecret","expires_in":1}"#).unwrap();
        assert!(!format!("{t:?}").contains("supersecret"));
        let header = t.bearer_header().unwrap();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer supersecret");
        assert!(!format!("{header:?}").contains("supersecret"));
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_of_expiry_and_after_invalidation() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let n = AtomicU64::new(0);
        let fetch = || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Ok((AccessToken::new(format!("t{i}").into()), Duration::from_secs(3600)))
        };
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(3600 - 61)).await;
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(2)).await;
        let t1 = cache.get(fetch).await.unwrap();
        assert_eq!(t1.secret(), "t1");
        cache.invalidate(&AccessToken::new("t0".into()));
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t1", "a stale token does not evict the current one");
        cache.invalidate(&t1);
        assert_eq!(cache.get(fetch).await.unwrap().secret(), "t2");
        assert_eq!(cache.fetches(), 3);
    }
}
