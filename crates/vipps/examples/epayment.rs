//! An ePayment from creation to refund, with its webhooks: a receiver on 127.0.0.1 registered
//! through the Webhooks API, a payment created with a generated reference and idempotency key,
//! approved (the test-only force approve), the `epayments.payment.authorized.v1` webhook
//! received and verified, the payment waited for until AUTHORIZED, captured, partly refunded,
//! and its event log.
//!
//! `cargo run --example epayment`
//!
//! Where it runs follows the quickstart's rule: with none of `VIPPS_CLIENT_ID`,
//! `VIPPS_CLIENT_SECRET`, `VIPPS_SUBSCRIPTION_KEY` and `VIPPS_MERCHANT_SERIAL_NUMBER` set it runs
//! offline against the in-process sandbox; with all four, against the Vipps MobilePay test
//! environment (`VIPPS_TEST_PHONE_NUMBER` names the test user who approves); with only some, it
//! names the missing ones and stops. The test environment cannot deliver webhooks to 127.0.0.1,
//! so there the webhook steps are left out (and said so). Every wait is bounded: the example
//! ends, with status 0 when every step went through.

use std::error::Error;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::sync::mpsc;
use vipps::epayment::types::{
    Amount, CreatePaymentRequest, CreatePaymentRequestUserFlow, Currency, Customer, CustomerPhoneNumber, ForceApprove,
    GetPaymentResponse, PaymentMethod, PaymentMethodType, State as PaymentState,
};
use vipps::epayment::{Backoff, NewPayment};
use vipps::webhooks::{Event, PaymentEvent, PaymentEventName, VerifiedWebhook, Verifier};
use vipps::webhooks_api::types::RegisterRequest;
use vipps::IdempotencyKey;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

// Where to run (the sandbox, or the test environment with all four VIPPS_* credentials), shared
// with the quickstart.
mod shared;

/// The ePayment events the receiver is registered for.
const EVENTS: [&str; 4] = [
    "epayments.payment.created.v1",
    "epayments.payment.authorized.v1",
    "epayments.payment.captured.v1",
    "epayments.payment.refunded.v1",
];

/// How long to wait for a webhook before giving up.
const WEBHOOK_WAIT: Duration = Duration::from_secs(10);

/// The receiver's state: the verifier (with the secret of the registration) for the
/// `VerifiedWebhook` extractor, and where to pass the verified payment events on.
#[derive(Clone)]
struct Receiver {
    verifier: Verifier,
    events: mpsc::UnboundedSender<PaymentEvent>,
}

impl FromRef<Receiver> for Verifier {
    fn from_ref(receiver: &Receiver) -> Verifier {
        receiver.verifier.clone()
    }
}

/// The webhook endpoint: only a delivery that passes verification reaches the body of this
/// function (the extractor answers 401 otherwise).
async fn receive(State(receiver): State<Receiver>, VerifiedWebhook(event): VerifiedWebhook) -> StatusCode {
    if let Event::Payment(payment) = event {
        let _ = receiver.events.send(payment);
    }
    StatusCode::OK
}

/// Waits (at most [`WEBHOOK_WAIT`]) for the webhook of `name` about `reference`, printing the
/// others that come first.
async fn webhook(
    events: &mut mpsc::UnboundedReceiver<PaymentEvent>,
    reference: &str,
    name: PaymentEventName,
) -> Result<PaymentEvent> {
    let wait = async {
        while let Some(event) = events.recv().await {
            if event.reference == reference && event.name == name {
                return Ok(event);
            }
            // Webhooks may come in any order.
            let name = event.name.as_str().to_ascii_lowercase();
            println!("   (also received and verified: epayments.payment.{name}.v1 for {})", event.reference);
        }
        Err("the webhook receiver stopped".into())
    };
    match tokio::time::timeout(WEBHOOK_WAIT, wait).await {
        Ok(event) => event,
        Err(_) => Err(format!("no {} webhook for {reference} within {WEBHOOK_WAIT:?}", name.as_str()).into()),
    }
}

/// The test user, as the payment's customer and the one who approves it.
fn customer() -> Result<Customer> {
    let phone = CustomerPhoneNumber::builder().phone_number(shared::phone_number());
    Ok(CustomerPhoneNumber::try_from(phone).map_err(|e| format!("VIPPS_TEST_PHONE_NUMBER: {e}"))?.into())
}

fn describe(p: &GetPaymentResponse) -> String {
    let a = &p.aggregate;
    format!(
        "{} {} øre {}: authorized {}, captured {}, refunded {}, cancelled {}",
        p.state,
        p.amount.value,
        p.amount.currency,
        a.authorized_amount.value,
        a.captured_amount.value,
        a.refunded_amount.value,
        a.cancelled_amount.value
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let test_only = "the example force-approves a payment, which only the test environment allows";
    let (vipps, sandbox, place) = shared::connect("vipps-rs-epayment-example", test_only).await?;
    println!("Running against {place}.\n");
    flow(&vipps, sandbox.is_some()).await
}

/// The steps; `local_webhooks` when the API can deliver to a receiver on 127.0.0.1 (the sandbox).
async fn flow(vipps: &vipps::Vipps, local_webhooks: bool) -> Result<()> {
    let epayment = vipps.epayment();
    let nok = |value| Amount { currency: Currency::Nok, value };

    // 1. A webhook receiver on 127.0.0.1, registered through the Webhooks API. Its port is
    //    known before the registration and its secret after, so it binds first and serves after.
    let mut receiver = None;
    if local_webhooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/vipps", listener.local_addr()?);
        let registration = RegisterRequest { url: url.clone(), events: EVENTS.iter().map(|e| e.to_string()).collect() };
        let registered = vipps.webhooks().register_webhook().body(registration).send().await?.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Receiver { verifier: Verifier::new(registered.secret), events: tx };
        let app = Router::new().route("/hooks/vipps", post(receive)).with_state(state);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        println!("1. webhook receiver at {url}, registered as {} for {}", registered.id, EVENTS.join(", "));
        receiver = Some((rx, registered.id, server));
    } else {
        println!("1. webhooks: left out (the test environment delivers only to a public https URL, not to 127.0.0.1)");
    }

    // 2. A payment of 499 kr with a generated reference and idempotency key. Sending the same
    //    NewPayment again after a failure never makes a second payment.
    let body = CreatePaymentRequest::builder()
        .amount(nok(49_900))
        .payment_method(PaymentMethod { type_: PaymentMethodType::Wallet })
        .customer(customer()?)
        .user_flow(CreatePaymentRequestUserFlow::WebRedirect)
        .return_url("https://example.com/shop/return")
        .payment_description("One pair of running shoes");
    let payment = NewPayment::new(body)?;
    let created = payment.create(&epayment).await?;
    let reference = created.reference.to_string();
    println!(
        "2. created payment {reference} (idempotency key {}), redirect URL {}",
        created.idempotency_key,
        created.response.redirect_url.as_deref().unwrap_or("-")
    );

    // 3. The customer approves it (the test-only force approve stands in for the app).
    let approval = ForceApprove::builder().customer(customer()?);
    epayment.force_approve().reference(reference.as_str()).body(approval).send().await?;
    println!("3. force-approved as the test user");

    // 4. The authorized webhook, verified with the registration's secret.
    if let Some((events, _, _)) = receiver.as_mut() {
        let event = webhook(events, &reference, PaymentEventName::Authorized).await?;
        println!(
            "4. verified webhook epayments.payment.authorized.v1: {} {} øre {} for {}",
            event.name.as_str(),
            event.amount.value,
            event.amount.currency,
            event.reference
        );
    } else {
        println!("4. (no webhook receiver)");
    }

    // 5. Wait (at most 30 s, reading at growing intervals) until the payment is AUTHORIZED.
    let authorized =
        vipps::epayment::wait_for_state(&epayment, &reference, PaymentState::Authorized, Duration::from_secs(30), Backoff::default())
            .await?;
    println!("5. {}", describe(&authorized));

    // 6. Capture it all, 7. refund 100 kr. Each checked against the aggregate before it is sent,
    //    each with its own idempotency key.
    let captured = vipps::epayment::capture(&epayment, &reference, authorized.amount.clone(), &IdempotencyKey::generate()).await?;
    println!("6. captured {} øre: captured {} in all", authorized.amount.value, captured.aggregate.captured_amount.value);
    let refunded = vipps::epayment::refund(&epayment, &reference, nok(10_000), &IdempotencyKey::generate()).await?;
    println!("7. refunded 10000 øre: refunded {} in all", refunded.aggregate.refunded_amount.value);
    // A refund of more than is left is refused before anything is sent.
    if let Err(e) = vipps::epayment::refund(&epayment, &reference, nok(49_900), &IdempotencyKey::generate()).await {
        println!("   refunding 49900 more is refused before sending: {e}");
    }

    // 8. The captured and refunded webhooks, then the event log, oldest first.
    if let Some((events, id, server)) = receiver.as_mut() {
        for name in [PaymentEventName::Captured, PaymentEventName::Refunded] {
            let event = webhook(events, &reference, name).await?;
            println!("8. verified webhook: {} {} øre", event.name.as_str(), event.amount.value);
        }
        vipps.webhooks().delete_webhook().id(*id).send().await?;
        server.abort();
    }
    let log = vipps::epayment::events(&epayment, &reference).await?;
    println!("9. event log of {reference}:");
    for e in &log {
        let name = e.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        println!("   - {} {name} {} øre", e.timestamp.format("%H:%M:%S%.3f"), e.amount.value);
    }
    println!("\nDone.");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The whole flow against the sandbox, whatever VIPPS_* variables the environment has.
    #[tokio::test]
    async fn the_flow_runs_against_the_sandbox_with_its_webhooks() {
        let sandbox = vipps_sandbox::Sandbox::start().await.unwrap();
        let c = sandbox.credentials();
        let vipps = vipps::Vipps::builder()
            .client_id(&c.client_id)
            .client_secret(&c.client_secret)
            .subscription_key(&c.subscription_key)
            .merchant_serial_number(&c.merchant_serial_number)
            .base_url(sandbox.base_url())
            .build()
            .unwrap();
        super::flow(&vipps, true).await.unwrap();
        // The flow waited for the authorized, captured and refunded webhooks; the receiver
        // answered every delivery with a 200, so none failed verification.
        let log = sandbox.state().delivery_log.lock().unwrap();
        assert!(log.len() >= 3, "{log:?}");
        assert!(log.iter().all(|a| a.status == Some(200)), "{log:?}");
    }
}
