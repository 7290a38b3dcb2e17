//! Conveniences for the Checkout API v3: a session created with a fresh reference, waiting for
//! a session to reach a state, and checking the `Authorization` of a session callback.

use std::time::Duration;

use vipps_checkout::types::{
    builder, ExternalSessionState, InitiateSessionResponse, PaymentTransactionReference, SessionResponse,
};
use vipps_checkout::Client;
use vipps_core::Error;

/// A new session reference: `chk-` and 32 random hexadecimal digits (36 characters, within the
/// API's 8 to 50 letters, digits and dashes).
pub fn new_reference() -> PaymentTransactionReference {
    format!("chk-{}", uuid::Uuid::new_v4().simple()).parse().expect("a reference the pattern accepts")
}

/// A session made by [`create_session`]: the reference it was given and the API's answer.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// The new reference, which names the session in [`Client::get_session`].
    pub reference: PaymentTransactionReference,
    /// `token`, `checkoutFrontendUrl` and `pollingUrl`.
    pub response: InitiateSessionResponse,
}

/// Creates a session for `request`, whose transaction is `transaction` with a new reference
/// ([`new_reference`]); whatever reference `transaction` had is replaced. A request that breaks
/// the spec is an [`Error::InvalidInput`] naming the field, and nothing is sent.
///
/// ```no_run
/// # async fn run(vipps: vipps::Vipps) -> Result<(), vipps::Error> {
/// use vipps::checkout::types::{builder, Amount, PaymentMerchantInfo};
/// let request = builder::InitiateSessionRequest::default().merchant_info(
///     PaymentMerchantInfo::builder()
///         .callback_url("https://shop.example.com/checkout/callback")
///         .return_url("https://shop.example.com/checkout/done")
///         .callback_authorization_token("a-secret-the-shop-chose"),
/// );
/// let transaction = builder::PaymentTransaction::default()
///     .amount(Amount { currency: "NOK".into(), value: 49_900 })
///     .payment_description("One pair of socks");
/// let session = vipps::checkout::create_session(&vipps.checkout(), request, transaction).await?;
/// println!("{} at {}", session.reference.as_str(), session.response.checkout_frontend_url);
/// # Ok(())
/// # }
/// ```
pub async fn create_session(
    client: &Client,
    request: builder::InitiateSessionRequest,
    transaction: builder::PaymentTransaction,
) -> Result<CreatedSession, Error> {
    let reference = new_reference();
    let request = request.transaction(transaction.reference(reference.clone()));
    let response = client.create_session().body(request).send().await?.into_inner();
    Ok(CreatedSession { reference, response })
}

/// Whether a session is over: `PaymentSuccessful`, `PaymentTerminated` or `SessionExpired`.
pub fn is_final(state: &ExternalSessionState) -> bool {
    matches!(
        state,
        ExternalSessionState::PaymentSuccessful
            | ExternalSessionState::PaymentTerminated
            | ExternalSessionState::SessionExpired
    )
}

/// Polls a session every `interval` until its state is one of `targets`, and returns it; an
/// [`Error::Timeout`] with [`Limit::Wait`](vipps_core::Limit::Wait) when `deadline` passes first
/// (a read in flight included), and [`Error::FinalState`] at once when the session ended in a
/// state that is not a target (it will not change again). Pass `&[PaymentSuccessful,
/// PaymentTerminated, SessionExpired]` to wait for the end, whatever it is (the guide
/// recommends polling beside the callback, which is not guaranteed). No targets or a zero
/// `interval` is [`Error::InvalidInput`], before anything is sent.
pub async fn wait_for_session_state(
    client: &Client,
    reference: &str,
    targets: &[ExternalSessionState],
    deadline: Duration,
    interval: Duration,
) -> Result<SessionResponse, Error> {
    if targets.is_empty() {
        return Err(Error::invalid_input("wait_for_session_state needs at least one state to wait for"));
    }
    if interval.is_zero() {
        return Err(Error::invalid_input("wait_for_session_state needs a polling interval above zero"));
    }
    let poll = async {
        loop {
            let session = client.get_session().reference(reference).send().await?.into_inner();
            if targets.contains(&session.session_state) {
                return Ok(session);
            }
            if is_final(&session.session_state) {
                let wanted: Vec<String> = targets.iter().map(ToString::to_string).collect();
                return Err(Error::FinalState {
                    subject: format!("checkout session {reference}"),
                    state: session.session_state.to_string(),
                    wanted: wanted.join(", "),
                });
            }
            tokio::time::sleep(interval).await;
        }
    };
    // `timeout` saturates a far deadline, so no `Duration` overflows here.
    match tokio::time::timeout(deadline, poll).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::debug!(reference, "the session did not reach the state in time");
            Err(Error::Timeout { limit: vipps_core::Limit::Wait, after: deadline })
        }
    }
}

/// Whether a session callback's `Authorization` header value is the `callbackAuthorizationToken`
/// the session was created with (compared in constant time). Checkout sends the token as the
/// whole header value; a missing header (`None`) or an empty token is never authorized.
pub fn callback_authorized(authorization: Option<&[u8]>, callback_authorization_token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = callback_authorization_token.as_bytes();
    match authorization {
        Some(given) if !expected.is_empty() => bool::from(given.ct_eq(expected)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_new_and_fit_the_pattern() {
        let (a, b) = (new_reference(), new_reference());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("chk-"));
    }

    #[test]
    fn only_the_exact_token_authorizes_a_callback() {
        assert!(callback_authorized(Some(b"s3cret-token"), "s3cret-token"));
        assert!(!callback_authorized(Some(b"s3cret-tokem"), "s3cret-token"));
        assert!(!callback_authorized(Some(b"s3cret-token "), "s3cret-token"));
        assert!(!callback_authorized(Some(b"Bearer s3cret-token"), "s3cret-token"));
        assert!(!callback_authorized(None, "s3cret-token"));
        assert!(!callback_authorized(Some(b""), ""));
    }
}
