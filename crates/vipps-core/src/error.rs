//! The one error type of the SDK.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::problem::Problem;

/// Everything that can go wrong in a call. Every generated `send()` returns it directly.
///
/// Each variant keeps the facts of what happened (the status and problem body, which time
/// limit ran out, where a response failed to decode) and chains the underlying error through
/// [`std::error::Error::source`]. `Display` says what happened once, without the text of its
/// source: print the chain (`{:#}` with `anyhow`, or walk `source()`) for the whole story.
/// No message, `Debug` output or source ever contains a secret, a token or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration given to a builder is invalid; nothing was sent.
    #[error("invalid configuration: {field}: {message}")]
    Config {
        /// The setting at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An argument of a call is invalid; nothing was sent.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// The API refused the access token or the subscription key (HTTP 401 after one new
    /// token, or a 401 on a call that may not be sent twice).
    #[error("authentication failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Authentication {
        /// The HTTP status, when the refusal came as a response.
        status: Option<u16>,
        /// What the server said.
        message: String,
        /// The server's error body, when there was one.
        problem: Option<Box<Problem>>,
    },
    /// No access token could be had from the token endpoint. `status` and `problem` are the
    /// token endpoint's own answer when it gave one; a transport failure, a time limit or a
    /// malformed answer is the [`source`](std::error::Error::source).
    #[error("{}", token_summary(*status, problem.as_deref()))]
    TokenEndpoint {
        /// The token endpoint's HTTP status, when it answered with an error status.
        status: Option<u16>,
        /// The token endpoint's error body, when it sent one.
        problem: Option<Box<Problem>>,
        /// What failed, when the endpoint did not answer with an error status. Shared: every
        /// call that waited on the same token request gets the same failure.
        #[source]
        source: Option<Arc<Error>>,
    },
    /// The API answered with an error status.
    #[error("HTTP {status} from the API: {}", problem.summary())]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The error body, read as problem details.
        problem: Box<Problem>,
    },
    /// The server answered with a redirect. The runtime never follows one: a redirect would
    /// carry the credentials and the request to wherever it points.
    #[error("the server answered {} with a redirect{}; redirects are not followed", status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "a caller-supplied HTTP client".into()), location_host.as_deref().map(|h| format!(" to {h}")).unwrap_or_default())]
    Redirect {
        /// The 3xx status; `None` when a caller-supplied HTTP client followed the redirect
        /// itself (see [`RuntimeBuilder::http_client`](crate::RuntimeBuilder::http_client)).
        status: Option<u16>,
        /// The host the `Location` header named (only the host: its path or query may carry
        /// data), when there was one.
        location_host: Option<String>,
    },
    /// The request could not be sent or the response not received.
    #[error("{kind}")]
    Transport {
        /// Which step failed.
        kind: TransportKind,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// A time limit ran out.
    #[error("the {limit} time limit ({after:?}) ran out")]
    Timeout {
        /// Which limit.
        limit: Limit,
        /// Its length.
        after: Duration,
    },
    /// A helper that waits for a state (such as `vipps::epayment::wait_for_state`) found the
    /// object in a final state, one it never leaves, that is not the one waited for: waiting
    /// longer cannot help. Nothing else went wrong; no request was refused.
    #[error("{subject} is {state}, a final state, so it will not become {wanted}")]
    FinalState {
        /// What was waited on (`payment order-123`).
        subject: String,
        /// The final state it is in.
        state: String,
        /// What was waited for (`AUTHORIZED`, or `one of AUTHORIZED, TERMINATED`).
        wanted: String,
    },
    /// A response body was larger than the runtime accepts
    /// ([`RuntimeBuilder::max_response_size`](crate::RuntimeBuilder::max_response_size)).
    #[error("the response body is larger than the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A response did not have the documented shape.
    #[error("malformed response{}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), path.as_deref().map(|p| format!(" at `{p}`")).unwrap_or_default())]
    MalformedResponse {
        /// The HTTP status, when known.
        status: Option<u16>,
        /// The JSON path of the value that did not decode (`charges[2].amount`), when known.
        path: Option<String>,
        /// What did not parse. It never repeats a value of the response.
        message: String,
    },
}

/// Which step of an exchange failed, for [`Error::Transport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The request could not be sent, or the connection closed before a response came.
    Send,
    /// The response body could not be read to its end (reset, truncated).
    Body,
    /// Anything else the HTTP client reported.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect to the server",
            TransportKind::Tls => "the TLS handshake failed",
            TransportKind::Send => "the request could not be sent or no response came",
            TransportKind::Body => "the response body could not be read",
            TransportKind::Other => "the HTTP client failed",
        })
    }
}

/// Which time limit ran out, for [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Timeouts::connect`](crate::Timeouts::connect): establishing a connection.
    Connect,
    /// [`Timeouts::attempt`](crate::Timeouts::attempt): one attempt, or a caller-supplied HTTP
    /// client's own timeout.
    Attempt,
    /// [`Timeouts::call`](crate::Timeouts::call): the whole call.
    Call,
    /// A deadline given to a helper that waits (such as waiting for a status).
    Wait,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Connect => "connect",
            Limit::Attempt => "attempt",
            Limit::Call => "whole-call",
            Limit::Wait => "wait",
        })
    }
}

fn token_summary(status: Option<u16>, problem: Option<&Problem>) -> String {
    match (status, problem) {
        (Some(s), Some(p)) => format!("the token endpoint answered HTTP {s}: {}", p.summary()),
        (Some(s), None) => format!("the token endpoint answered HTTP {s}"),
        _ => "no access token could be fetched".to_owned(),
    }
}

impl Error {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            field,
            message: message.into(),
        }
    }

    /// An [`Error::InvalidInput`]; the generated clients report a request argument that did
    /// not convert with it.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn malformed(status: Option<u16>, message: impl Into<String>) -> Self {
        Error::MalformedResponse {
            status,
            path: None,
            message: message.into(),
        }
    }

    /// The HTTP status of the response behind this error (the token endpoint's for
    /// [`Error::TokenEndpoint`]), if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Authentication { status, .. }
            | Error::MalformedResponse { status, .. }
            | Error::TokenEndpoint { status, .. }
            | Error::Redirect { status, .. } => *status,
            _ => None,
        }
    }

    /// The problem details the server sent with an error status, if any.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api { problem, .. } => Some(problem),
            Error::Authentication { problem, .. } | Error::TokenEndpoint { problem, .. } => {
                problem.as_deref()
            }
            _ => None,
        }
    }

    /// Whether credentials, a key or a token were refused: an [`Error::Authentication`], or
    /// a token endpoint that answered 400, 401 or 403.
    pub fn is_authentication(&self) -> bool {
        match self {
            Error::Authentication { .. } => true,
            Error::TokenEndpoint {
                status: Some(s), ..
            } => matches!(s, 400 | 401 | 403),
            _ => false,
        }
    }

    /// Whether a time limit ran out, here or (for [`Error::TokenEndpoint`]) in the token
    /// request this call waited on.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::TokenEndpoint {
                source: Some(inner),
                ..
            } => inner.is_timeout(),
            _ => false,
        }
    }

    /// Classifies an error of the HTTP client. Its messages name the URL, never headers, and
    /// the runtime's URLs carry no secret.
    /// `limits` are the connect and attempt limits in force, to say how long a timeout was.
    pub(crate) fn from_reqwest(e: reqwest::Error, limits: (Option<Duration>, Option<Duration>)) -> Self {
        if e.is_timeout() {
            let (limit, after) = if e.is_connect() {
                (Limit::Connect, limits.0)
            } else {
                (Limit::Attempt, limits.1)
            };
            return Error::Timeout {
                limit,
                after: after.unwrap_or_default(),
            };
        }
        if e.is_builder() {
            // A body or query that does not serialize says why (a generated enum's `Unknown`
            // value, which is never sent, names itself); other sources may quote a URL.
            let mut next: Option<&(dyn StdError + 'static)> = e.source();
            while let Some(err) = next {
                if err.is::<serde_json::Error>() || err.is::<serde_urlencoded::ser::Error>() {
                    return Error::InvalidInput {
                        message: format!("the request could not be built: {err}"),
                    };
                }
                next = err.source();
            }
            return Error::InvalidInput {
                message: format!("the request could not be built: {}", short(&e)),
            };
        }
        let kind = if is_tls(&e) {
            TransportKind::Tls
        } else if e.is_connect() {
            TransportKind::Connect
        } else if e.is_body() || e.is_decode() {
            TransportKind::Body
        } else if e.is_request() {
            TransportKind::Send
        } else {
            TransportKind::Other
        };
        Error::Transport { kind, source: e }
    }

    /// Whether the failure may pass if the same request is sent again: a connection that
    /// failed or broke, an attempt that ran out of time.
    pub(crate) fn may_retry(&self) -> bool {
        matches!(
            self,
            Error::Transport {
                kind: TransportKind::Connect | TransportKind::Send | TransportKind::Body,
                ..
            } | Error::Timeout {
                limit: Limit::Connect | Limit::Attempt,
                ..
            }
        )
    }

    /// Whether the failure happened before the server could have acted on the request
    /// (nothing reached it), so that even a request that may not be repeated can be sent again.
    pub(crate) fn nothing_was_sent(&self) -> bool {
        matches!(
            self,
            Error::Transport {
                kind: TransportKind::Connect | TransportKind::Tls,
                ..
            } | Error::Timeout {
                limit: Limit::Connect,
                ..
            }
        )
    }
}

/// reqwest's message without its source chain (that is reachable through `source()`).
fn short(e: &reqwest::Error) -> String {
    let text = e.to_string();
    text.split(": ").next().unwrap_or(&text).to_owned()
}

fn is_tls(e: &reqwest::Error) -> bool {
    e.source().is_some_and(holds_tls_error)
}

/// Whether an error of the TLS library is somewhere in this chain. An `io::Error` that wraps
/// another error reports that error's source as its own, skipping the wrapped one, so wrapped
/// errors are looked into too.
fn holds_tls_error(err: &(dyn StdError + 'static)) -> bool {
    if is_tls_library_error(err) {
        return true;
    }
    if let Some(wrapped) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        if holds_tls_error(wrapped) {
            return true;
        }
    }
    err.source().is_some_and(holds_tls_error)
}

/// An error of the TLS backend the crate is built with (none without a TLS feature).
fn is_tls_library_error(err: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "rustls")]
    if err.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    #[cfg(feature = "native-tls")]
    if err.downcast_ref::<native_tls::Error>().is_some() {
        return true;
    }
    let _ = err;
    false
}

impl From<reqwest::Error> for Error {
    /// A generated client's request that could not be built (a path value that makes no URL).
    fn from(e: reqwest::Error) -> Self {
        Error::from_reqwest(e, (None, None))
    }
}

impl From<reqwest::header::InvalidHeaderValue> for Error {
    /// A generated client's header argument (such as an `Idempotency-Key`) that cannot be sent.
    fn from(_: reqwest::header::InvalidHeaderValue) -> Self {
        Error::invalid_input("a header argument holds characters a header cannot carry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_states_each_fact_once() {
        let inner = Error::Timeout {
            limit: Limit::Attempt,
            after: Duration::from_secs(5),
        };
        let e = Error::TokenEndpoint {
            status: None,
            problem: None,
            source: Some(Arc::new(inner)),
        };
        assert_eq!(e.to_string(), "no access token could be fetched");
        assert_eq!(
            e.source().unwrap().to_string(),
            "the attempt time limit (5s) ran out"
        );
        assert!(e.is_timeout());
        let p = Problem {
            title: Some("invalid_client".into()),
            ..Default::default()
        };
        let e = Error::TokenEndpoint {
            status: Some(401),
            problem: Some(Box::new(p)),
            source: None,
        };
        assert_eq!(
            e.to_string(),
            "the token endpoint answered HTTP 401: invalid_client"
        );
        assert!(e.is_authentication() && e.source().is_none());
        let e = Error::MalformedResponse {
            status: Some(200),
            path: Some("[0].amount".into()),
            message: "invalid type".into(),
        };
        assert_eq!(
            e.to_string(),
            "malformed response (HTTP 200) at `[0].amount`: invalid type"
        );
        let e = Error::Redirect {
            status: Some(307),
            location_host: Some("evil.example".into()),
        };
        assert!(e.to_string().contains("307") && e.to_string().contains("evil.example"));
    }
}
