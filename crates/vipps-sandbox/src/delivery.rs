//! Webhook deliveries: every ePayment and Recurring event is sent, signed, to the URLs its
//! merchant registered for it through the Webhooks API ([`crate::webhooks`]).
//!
//! A delivery is a `POST` of the event as JSON to the registered URL, signed with the
//! registration's secret as the Webhooks API does it (`x-ms-date`, `x-ms-content-sha256` and
//! `Authorization`, made by [`vipps_core::webhooks::sign`]), so that a receiver checks it with
//! [`vipps_core::webhooks::Verifier`] and reads it into [`vipps_core::webhooks::Event`]. An
//! ePayment event (`msn`, `reference`, `pspReference`, `name`, `amount`, `timestamp`,
//! `idempotencyKey`, `success`) is named `epayments.payment.<name>.v1`; the Recurring events
//! and their fields are listed in [`crate::recurring`] ("Webhooks").
//!
//! Deliveries run on a background task of a started sandbox (a bare
//! [`crate::SandboxBuilder::router`] sends none). One that does not get a 2xx answer (or no
//! answer within 10 s) is tried again after [`crate::SandboxBuilder::webhook_retry_delay`]
//! (1 s by default), doubled each time, [`MAX_ATTEMPTS`] attempts in all. `x-ms-date` is the
//! wall-clock time of each attempt, not the sandbox clock, since the receiver checks it
//! against its own clock: a retry is signed anew, so a receiver that refuses stale dates
//! accepts it.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::state::{lock, Shared};

/// How many times one delivery is tried at most.
pub const MAX_ATTEMPTS: u32 = 5;

/// An event waiting to be delivered.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The merchant it concerns.
    pub msn: String,
    /// The webhook event name (`epayments.payment.captured.v1`, `recurring.charge-reserved.v1`).
    pub event: String,
    /// The JSON body.
    pub body: bytes::Bytes,
}

/// One delivery attempt's outcome, kept for tests that look inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Where it went.
    pub url: String,
    /// The event name.
    pub event: String,
    /// The answer's status, `None` when there was none.
    pub status: Option<u16>,
}

/// Sends every outgoing event to its subscribers until the sandbox is gone.
pub(crate) async fn run(state: Weak<Shared>, mut outgoing: UnboundedReceiver<Outgoing>) {
    let http = match vipps_core::reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(vipps_core::reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!("the sandbox cannot deliver webhooks: {e}");
            return;
        }
    };
    while let Some(out) = outgoing.recv().await {
        let Some(shared) = state.upgrade() else { return };
        let subscribers = lock(&shared.webhooks).subscribers(&out.msn, &out.event);
        let delay = shared.config.webhook_retry_delay;
        drop(shared);
        for registration in subscribers {
            let (http, state, out) = (http.clone(), state.clone(), out.clone());
            tokio::spawn(async move {
                let attempt = || async {
                    let status = send(&http, &registration.url, &registration.secret, &out.body).await;
                    let shared = state.upgrade()?;
                    lock(&shared.delivery_log).push(Attempt {
                        url: registration.url.clone(),
                        event: out.event.clone(),
                        status,
                    });
                    Some(status)
                };
                with_retries(MAX_ATTEMPTS, delay, attempt).await;
            });
        }
    }
}

/// Makes `attempt` until one is answered with a 2xx, at most `attempts` times, waiting `first`
/// after the first failure and twice as long after each next one. An attempt gives the status
/// it was answered with (`None` when none came), or nothing when the sandbox is gone, which
/// ends the tries. Webhook deliveries and Checkout callbacks are retried alike.
pub(crate) async fn with_retries<F, Fut>(attempts: u32, first: std::time::Duration, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Option<u16>>>,
{
    let mut wait = first;
    for n in 1..=attempts {
        let Some(status) = attempt().await else { return };
        if status.is_some_and(|s| (200..300).contains(&s)) || n == attempts {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}

/// One signed `POST`; the answer's status, or `None` when none came.
async fn send(http: &vipps_core::reqwest::Client, url: &str, secret: &str, body: &bytes::Bytes) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str()?),
        None => parsed.host_str()?.to_owned(),
    };
    let path_and_query = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let secret = secrecy::SecretString::from(secret.to_owned());
    let signed = vipps_core::webhooks::sign(&secret, "POST", &path_and_query, &host, SystemTime::now(), body);
    let mut request = http.post(url).header("content-type", "application/json").body(body.clone());
    for (name, value) in signed.iter() {
        request = request.header(name, value);
    }
    request.send().await.ok().map(|r| r.status().as_u16())
}
