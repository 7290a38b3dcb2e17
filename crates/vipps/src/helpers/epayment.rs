//! Conveniences for the ePayment API: creating a payment that can be retried safely (a
//! generated reference and idempotency key, kept together), waiting for a payment's state with
//! a deadline and capped exponential backoff, capture, refund and cancel checked against the
//! payment's aggregate before anything is sent, and the event log oldest first.
//!
//! ```no_run
//! # async fn run(vipps: vipps::Vipps) -> Result<(), vipps::Error> {
//! use std::time::Duration;
//! use vipps::epayment::types::{Amount, CreatePaymentRequest, CreatePaymentRequestUserFlow, Currency, PaymentMethod, PaymentMethodType, State};
//! use vipps::epayment::{Backoff, NewPayment};
//! use vipps::IdempotencyKey;
//!
//! let epayment = vipps.epayment();
//! let payment = NewPayment::new(
//!     CreatePaymentRequest::builder()
//!         .amount(Amount { currency: Currency::Nok, value: 49_900 })
//!         .payment_method(PaymentMethod { type_: PaymentMethodType::Wallet })
//!         .user_flow(CreatePaymentRequestUserFlow::WebRedirect)
//!         .return_url("https://shop.example.com/return"),
//! )?;
//! // Sending it again (after a time-out, say) never makes a second payment: same key, same body.
//! let created = payment.create(&epayment).await?;
//! let authorized = vipps::epayment::wait_for_state(&epayment, &created.reference, State::Authorized, Duration::from_secs(300), Backoff::default()).await?;
//! let amount = Amount { currency: Currency::Nok, value: 49_900 };
//! vipps::epayment::capture(&epayment, &created.reference, amount, &IdempotencyKey::generate()).await?;
//! # let _ = authorized;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use vipps_core::{Error, IdempotencyKey, Limit};
use vipps_epayment::types::{
    builder, Amount, CaptureModificationRequest, CreatePaymentRequest, CreatePaymentResponse, Currency,
    GetPaymentResponse, ModificationResponse, PaymentEvent, Reference, RefundModificationRequest, State,
};
use vipps_epayment::Client;

/// A new payment reference: a random UUID (36 characters of hex digits and `-`), which the
/// spec's `^[a-zA-Z0-9-]{8,50}$` admits.
pub fn generate_reference() -> Reference {
    uuid::Uuid::new_v4().to_string().parse().expect("a UUID matches the reference pattern")
}

/// A payment to create, with its reference and idempotency key fixed once: [`NewPayment::create`]
/// may be called again after a failure (a time-out, a lost connection), and the API answers a
/// repeat with the first answer instead of creating a second payment.
#[derive(Debug, Clone)]
pub struct NewPayment {
    reference: Reference,
    idempotency_key: IdempotencyKey,
    body: CreatePaymentRequest,
}

/// What [`NewPayment::create`] returns: the reference and key it used, and the API's answer.
#[derive(Debug, Clone)]
pub struct CreatedPayment {
    /// The payment's reference, for every later call about it.
    pub reference: Reference,
    /// The key the creation was sent with.
    pub idempotency_key: IdempotencyKey,
    /// The API's answer (`redirectUrl` for the redirect and QR flows).
    pub response: CreatePaymentResponse,
}

impl NewPayment {
    /// The payment `body` describes, with a generated reference (any reference set in `body`
    /// is replaced) and a generated idempotency key. A body that breaks the spec (a field
    /// missing or out of its bounds) is an [`Error::InvalidInput`] naming the field.
    pub fn new(body: builder::CreatePaymentRequest) -> Result<Self, Error> {
        Self::with_reference(generate_reference(), body)
    }

    /// The same with the caller's own reference (an order number, say).
    pub fn with_reference(
        reference: impl TryInto<Reference, Error: std::fmt::Display>,
        body: builder::CreatePaymentRequest,
    ) -> Result<Self, Error> {
        let reference =
            reference.try_into().map_err(|e| Error::invalid_input(format!("the payment reference: {e}")))?;
        let body = CreatePaymentRequest::try_from(body.reference(reference.clone()))
            .map_err(|e| Error::invalid_input(format!("the payment request: {e}")))?;
        Ok(Self { reference, idempotency_key: IdempotencyKey::generate(), body })
    }

    /// The payment's reference.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The key every [`create`](Self::create) of this payment is sent with.
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.idempotency_key
    }

    /// The request body, reference included.
    pub fn body(&self) -> &CreatePaymentRequest {
        &self.body
    }

    /// Creates the payment, or gets the first answer again when it was already created with
    /// this key.
    pub async fn create(&self, client: &Client) -> Result<CreatedPayment, Error> {
        let response = client
            .create_payment()
            .idempotency_key(&self.idempotency_key)
            .body(self.body.clone())
            .send()
            .await?
            .into_inner();
        Ok(CreatedPayment {
            reference: self.reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            response,
        })
    }
}

/// Creates the payment `body` describes with a generated reference and idempotency key (see
/// [`NewPayment`], which keeps them for a retry when the creation fails).
pub async fn create_payment(client: &Client, body: builder::CreatePaymentRequest) -> Result<CreatedPayment, Error> {
    NewPayment::new(body)?.create(client).await
}

/// Whether a payment in `state` stays there: `ABORTED`, `EXPIRED` and `TERMINATED`.
/// (`AUTHORIZED` is not final: it may still be captured, refunded or cancelled.)
pub fn is_final(state: &State) -> bool {
    matches!(state, State::Aborted | State::Expired | State::Terminated)
}

/// The states [`wait_for_state`] waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// This state.
    State(State),
    /// Any of these states.
    AnyOf(Vec<State>),
    /// Any final state ([`is_final`]).
    Final,
    /// Any state but `CREATED`: the customer approved or rejected it, or it expired. (A state
    /// this SDK does not know does not end the wait.)
    Decided,
}

impl Until {
    /// Whether `state` ends the wait.
    pub fn accepts(&self, state: &State) -> bool {
        match self {
            Until::State(wanted) => wanted == state,
            Until::AnyOf(wanted) => wanted.contains(state),
            Until::Final => is_final(state),
            Until::Decided => !matches!(state, State::Created | State::Unknown(_)),
        }
    }
}

impl From<State> for Until {
    fn from(state: State) -> Self {
        Until::State(state)
    }
}

impl std::fmt::Display for Until {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Until::State(state) => write!(f, "{state}"),
            Until::AnyOf(states) => {
                f.write_str("one of ")?;
                for (i, state) in states.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{state}")?;
                }
                Ok(())
            }
            Until::Final => f.write_str("a final state"),
            Until::Decided => f.write_str("any state but CREATED"),
        }
    }
}

/// How often [`wait_for_state`] reads the payment: `first` after the first read, then each wait
/// `factor` times the one before, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait. Not zero.
    pub first: Duration,
    /// The longest wait. Not zero.
    pub max: Duration,
    /// How much each wait grows (1 keeps it constant).
    pub factor: u32,
}

impl Default for Backoff {
    /// 500 ms, doubling, at most 5 s.
    fn default() -> Self {
        Backoff { first: Duration::from_millis(500), max: Duration::from_secs(5), factor: 2 }
    }
}

/// Reads the payment until its state is one `until` accepts, and returns it. Between reads it
/// waits as `backoff` says. It returns at `deadline` at the latest, even in the middle of a read:
/// [`Error::Timeout`] with [`Limit::Wait`]. A payment in a final state `until` does not accept
/// will not change again: that is [`Error::FinalState`] at once. A failed read is returned as
/// it is (the runtime has already retried what may be retried).
pub async fn wait_for_state(
    client: &Client,
    reference: &str,
    until: impl Into<Until>,
    deadline: Duration,
    backoff: Backoff,
) -> Result<GetPaymentResponse, Error> {
    let until = until.into();
    if backoff.first.is_zero() || backoff.max.is_zero() {
        return Err(Error::invalid_input("the backoff of a wait must not be zero"));
    }
    if let Until::AnyOf(states) = &until {
        if states.is_empty() {
            return Err(Error::invalid_input("waiting for any of no state would never end"));
        }
    }
    let polls = async {
        let mut delay = backoff.first.min(backoff.max);
        loop {
            let payment = client.get_payment().reference(reference).send().await?.into_inner();
            if until.accepts(&payment.state) {
                return Ok(payment);
            }
            if is_final(&payment.state) {
                return Err(Error::FinalState {
                    subject: format!("payment {reference}"),
                    state: payment.state.to_string(),
                    wanted: until.to_string(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(backoff.factor.max(1)).min(backoff.max);
        }
    };
    match tokio::time::timeout(deadline, polls).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::debug!(reference, %until, "the payment did not reach the state in time");
            Err(Error::Timeout { limit: Limit::Wait, after: deadline })
        }
    }
}

/// Captures `amount` of an authorized payment, sent with `idempotency_key` (send the same key
/// again to retry safely). The payment is read first, and nothing is sent when `amount` is not
/// positive, is in another currency than the payment, or is more than is open for capture
/// (authorized, less captured and cancelled): an [`Error::InvalidInput`] that says which.
pub async fn capture(
    client: &Client,
    reference: &str,
    amount: Amount,
    idempotency_key: &IdempotencyKey,
) -> Result<ModificationResponse, Error> {
    check_amount(&amount, "capture")?;
    let payment = client.get_payment().reference(reference).send().await?.into_inner();
    let a = &payment.aggregate;
    let open = a.authorized_amount.value.saturating_sub(a.captured_amount.value).saturating_sub(a.cancelled_amount.value);
    let facts = format!(
        "authorized {}, captured {}, cancelled {}, state {}",
        a.authorized_amount.value, a.captured_amount.value, a.cancelled_amount.value, payment.state
    );
    check_open(client, reference, &payment, &amount, open, "capture", &facts, idempotency_key).await?;
    Ok(client
        .capture_payment()
        .reference(reference)
        .idempotency_key(idempotency_key)
        .body(CaptureModificationRequest { modification_amount: amount })
        .send()
        .await?
        .into_inner())
}

/// Refunds `amount` of what was captured, sent with `idempotency_key` (send the same key again
/// to retry safely). The payment is read first, and nothing is sent when `amount` is not
/// positive, is in another currency than the payment, or is more than is open for refund
/// (captured, less refunded): an [`Error::InvalidInput`] that says which.
pub async fn refund(
    client: &Client,
    reference: &str,
    amount: Amount,
    idempotency_key: &IdempotencyKey,
) -> Result<ModificationResponse, Error> {
    check_amount(&amount, "refund")?;
    let payment = client.get_payment().reference(reference).send().await?.into_inner();
    let a = &payment.aggregate;
    let open = a.captured_amount.value.saturating_sub(a.refunded_amount.value);
    let facts = format!("captured {}, refunded {}", a.captured_amount.value, a.refunded_amount.value);
    check_open(client, reference, &payment, &amount, open, "refund", &facts, idempotency_key).await?;
    Ok(client
        .refund_payment()
        .reference(reference)
        .idempotency_key(idempotency_key)
        .body(RefundModificationRequest { modification_amount: amount })
        .send()
        .await?
        .into_inner())
}

/// Cancels a payment: one not yet approved ends `TERMINATED`; of an authorized one, whatever is
/// not captured is released. Sent with `idempotency_key` (send the same key again to retry
/// safely). The payment is read first, and nothing is sent when there is nothing to cancel (a
/// final state, or an authorized payment wholly captured or cancelled): an
/// [`Error::InvalidInput`] that says why.
pub async fn cancel(
    client: &Client,
    reference: &str,
    idempotency_key: &IdempotencyKey,
) -> Result<ModificationResponse, Error> {
    let payment = client.get_payment().reference(reference).send().await?.into_inner();
    let a = &payment.aggregate;
    let open = a.authorized_amount.value.saturating_sub(a.captured_amount.value).saturating_sub(a.cancelled_amount.value);
    let refusal = match payment.state {
        // A state this SDK does not know: the API decides.
        State::Created | State::Unknown(_) => None,
        State::Authorized if open > 0 => None,
        State::Authorized => Some(format!(
            "payment {reference} has nothing left to cancel: authorized {}, captured {}, cancelled {}",
            a.authorized_amount.value, a.captured_amount.value, a.cancelled_amount.value
        )),
        ref state => Some(format!("payment {reference} is {state} and cannot be cancelled")),
    };
    if let Some(message) = refusal {
        if !already_sent(client, reference, idempotency_key).await? {
            return Err(Error::invalid_input(message));
        }
    }
    Ok(client.cancel_payment().reference(reference).idempotency_key(idempotency_key).send().await?.into_inner())
}

/// The payment's events (created, authorized, captured, ...), oldest first.
pub async fn events(client: &Client, reference: &str) -> Result<Vec<PaymentEvent>, Error> {
    let mut events = client.get_payment_event_log().reference(reference).send().await?.into_inner();
    // Stable: events with the same timestamp keep the order the API gave them.
    events.sort_by_key(|e| e.timestamp);
    Ok(events)
}

/// The checks that need no request: a non-zero amount in a currency the SDK knows.
fn check_amount(amount: &Amount, what: &str) -> Result<(), Error> {
    if amount.value == 0 {
        return Err(Error::invalid_input(format!(
            "the amount to {what} must be positive (in minor units), not {}",
            amount.value
        )));
    }
    if let Currency::Unknown(currency) = &amount.currency {
        return Err(Error::invalid_input(format!("the currency {currency:?} of the amount to {what} is not NOK, DKK or EUR")));
    }
    Ok(())
}

/// The checks against the payment read just before. An amount over what is open may still be
/// a retry of a modification that went through with this key (its answer was lost): the event
/// log tells, and then the request is sent for the API to answer with its first answer.
#[allow(clippy::too_many_arguments)]
async fn check_open(
    client: &Client,
    reference: &str,
    payment: &GetPaymentResponse,
    amount: &Amount,
    open: u64,
    what: &str,
    facts: &str,
    idempotency_key: &IdempotencyKey,
) -> Result<(), Error> {
    if amount.currency != payment.amount.currency {
        return Err(Error::invalid_input(format!(
            "the amount to {what} is in {}, but payment {reference} is in {}",
            amount.currency, payment.amount.currency
        )));
    }
    if amount.value > open && !already_sent(client, reference, idempotency_key).await? {
        return Err(Error::invalid_input(format!(
            "cannot {what} {} of payment {reference}: {open} is open ({facts})",
            amount.value
        )));
    }
    Ok(())
}

/// Whether the payment's event log holds an event caused by a request with this key.
async fn already_sent(client: &Client, reference: &str, idempotency_key: &IdempotencyKey) -> Result<bool, Error> {
    let log = client.get_payment_event_log().reference(reference).send().await?.into_inner();
    Ok(log.iter().any(|e| e.idempotency_key.as_deref().map(String::as_str) == Some(idempotency_key.as_str())))
}
