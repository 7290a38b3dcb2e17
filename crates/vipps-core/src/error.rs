//! The one error type of the SDK.

use crate::problem::Problem;

/// Everything that can go wrong in a call. Messages never contain secrets or tokens.
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
    /// The credentials, subscription key or token were refused.
    #[error("authentication failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Authentication {
        /// The HTTP status, when the refusal came as a response.
        status: Option<u16>,
        /// What the server or the runtime said.
        message: String,
        /// The server's error body, when there was one.
        problem: Option<Box<Problem>>,
    },
    /// The API answered with an error status.
    #[error("HTTP {status} from the API: {}", problem.summary())]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The error body, read as problem details.
        problem: Box<Problem>,
    },
    /// The request could not be sent or the response not received.
    #[error("transport error: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// An attempt or the whole call ran out of time.
    #[error("timed out: {message}")]
    Timeout {
        /// Which limit was reached.
        message: String,
    },
    /// A response did not have the documented shape.
    #[error("malformed response{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    MalformedResponse {
        /// The HTTP status, when known.
        status: Option<u16>,
        /// What did not parse.
        message: String,
    },
}

const HOOK_PREFIX: &str = "vipps-core:";

impl Error {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::Config { field, message: message.into() }
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput { message: message.into() }
    }

    /// The HTTP status of the response behind this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Authentication { status, .. } | Error::MalformedResponse { status, .. } => *status,
            _ => None,
        }
    }

    /// The problem details of an API error, if the server sent any.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api { problem, .. } => Some(problem),
            Error::Authentication { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// Encodes an error raised inside a generated client's hook (which can only return a
    /// string) so that [`Error::from`] restores its kind.
    pub fn to_hook_message(&self) -> String {
        let kind = match self {
            Error::Config { .. } | Error::InvalidInput { .. } => "invalid-input",
            Error::Authentication { .. } => "authentication",
            Error::Timeout { .. } => "timeout",
            Error::MalformedResponse { .. } => "malformed",
            Error::Api { .. } | Error::Transport { .. } => "transport",
        };
        let status = self.status().map(|s| s.to_string()).unwrap_or_default();
        format!("{HOOK_PREFIX}{kind}:{status}:{self}")
    }

    fn from_hook_message(message: String) -> Self {
        let Some(rest) = message.strip_prefix(HOOK_PREFIX) else {
            return Error::Transport { message, source: None };
        };
        let mut parts = rest.splitn(3, ':');
        let (kind, status, text) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("").trim());
        let status = status.parse().ok();
        let message = text.to_owned();
        match kind {
            "invalid-input" => Error::InvalidInput { message },
            "authentication" => Error::Authentication { status, message, problem: None },
            "timeout" => Error::Timeout { message },
            "malformed" => Error::MalformedResponse { status, message },
            _ => Error::Transport { message, source: None },
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Error::Timeout { message: "the server did not answer in time".into() }
        } else {
            // reqwest's messages name the URL, never headers; the URL carries no secret.
            Error::Transport { message: e.to_string(), source: Some(e) }
        }
    }
}

impl From<progenitor_client::Error<Problem>> for Error {
    fn from(e: progenitor_client::Error<Problem>) -> Self {
        use progenitor_client::Error as E;
        match e {
            E::InvalidRequest(message) => Error::InvalidInput { message },
            E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e) => Error::from_reqwest(e),
            E::ErrorResponse(rv) => {
                let status = rv.status().as_u16();
                let problem = Box::new(rv.into_inner());
                if status == 401 {
                    Error::Authentication { status: Some(status), message: problem.summary(), problem: Some(problem) }
                } else {
                    Error::Api { status, problem }
                }
            }
            E::InvalidResponsePayload(bytes, err) => {
                let shown: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
                Error::MalformedResponse { status: None, message: format!("{err}; body starts with {shown:?}") }
            }
            E::UnexpectedResponse(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    Error::MalformedResponse { status: Some(status), message: "a success status the API does not document".into() }
                } else {
                    Error::Api { status, problem: Box::new(Problem { detail: Some("an undocumented response".into()), ..Default::default() }) }
                }
            }
            E::Custom(message) => Error::from_hook_message(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_messages_round_trip_their_kind() {
        let e = Error::Authentication { status: Some(401), message: "refused".into(), problem: None };
        match Error::from(progenitor_client::Error::<Problem>::Custom(e.to_hook_message())) {
            Error::Authentication { status, message, .. } => {
                assert_eq!(status, Some(401));
                assert!(message.contains("refused"));
            }
            other => panic!("{other:?}"),
        }
        let e = Error::invalid_input("Idempotency-Key `a/b` contains '/'");
        assert!(matches!(
            Error::from(progenitor_client::Error::<Problem>::Custom(e.to_hook_message())),
            Error::InvalidInput { .. }
        ));
    }
}
