//! A Checkout v3 session from start to end: create it with a new reference, let the customer
//! approve it on the landing page, receive the callback, and read the session.
//!
//! `cargo run --example checkout`
//!
//! With none of `VIPPS_CLIENT_ID`, `VIPPS_CLIENT_SECRET`, `VIPPS_SUBSCRIPTION_KEY` and
//! `VIPPS_MERCHANT_SERIAL_NUMBER` set (an empty value counts as unset) it runs offline against
//! the in-process sandbox: the customer's approval is a plain form post to the sandbox's landing
//! page, and the callback goes to a receiver on 127.0.0.1. With all four set, it runs against the
//! Vipps MobilePay test environment: it prints the session's address for you to open and
//! complete, and polls the session until it ends (at most 10 minutes); the callback goes to
//! `VIPPS_CHECKOUT_CALLBACK_URL`, which must be reachable from the internet (without it, a
//! placeholder that receives nothing). With only some of them set it stops before doing
//! anything, naming the ones that are missing.

use std::error::Error;
use std::time::Duration;

use vipps::checkout::types::{builder, Amount, ExternalSessionState, PaymentMerchantInfo, SessionResponse};
use vipps::checkout::{callback_authorized, create_session, wait_for_session_state};

mod shared;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The callback token the session is created with; the receiver checks the callback against it.
fn callback_token() -> String {
    format!("cb-{}", uuid::Uuid::new_v4().simple())
}

/// A callback receiver on 127.0.0.1: its URL, and the first callback it accepts (the
/// `Authorization` must be `token`; anything else is answered 401 and not passed on).
async fn receiver(token: String) -> Result<(String, tokio::sync::mpsc::Receiver<SessionResponse>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let app = axum::Router::new().route(
        "/checkout/callback",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (tx, token) = (tx.clone(), token.clone());
            async move {
                let authorization = headers.get("authorization").map(|v| v.as_bytes());
                if !callback_authorized(authorization, &token) {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                match serde_json::from_slice::<SessionResponse>(&body) {
                    Ok(session) => {
                        let _ = tx.send(session).await;
                        axum::http::StatusCode::OK
                    }
                    Err(_) => axum::http::StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/checkout/callback", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, rx))
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
    let token = callback_token();
    let test_only = "the Checkout example creates sessions to pay: it runs against the test environment only";
    let (vipps, sandbox, place) = shared::connect("vipps-rs-checkout-example", test_only).await?;
    let (callbacks, callback_url) = if sandbox.is_some() {
        let (url, callbacks) = receiver(token.clone()).await?;
        (Some(callbacks), url)
    } else {
        let url = std::env::var("VIPPS_CHECKOUT_CALLBACK_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://example.com/vipps/checkout/callback".into());
        (None, url)
    };
    println!("Running against {place}.\n");
    let checkout = vipps.checkout();

    // 1. A session for 499 kr, with a new reference; the callback carries `token`.
    let request = builder::InitiateSessionRequest::default().merchant_info(
        PaymentMerchantInfo::builder()
            .callback_url(callback_url.as_str())
            .return_url("https://example.com/checkout/thank-you")
            .callback_authorization_token(token.as_str()),
    );
    let transaction = builder::PaymentTransaction::default()
        .amount(Amount { currency: "NOK".into(), value: 49_900 })
        .payment_description("One pair of wool socks");
    let session = create_session(&checkout, request, transaction).await?;
    let reference = session.reference.to_string();
    println!("1. session {reference}: {}", session.response.checkout_frontend_url);

    // 2. The customer approves it.
    let ended = match &sandbox {
        Some(sandbox) => {
            // The landing page, then its form's "approve", as a browser would post it.
            let browser = vipps_core::reqwest::Client::builder().redirect(vipps_core::reqwest::redirect::Policy::none()).build()?;
            let page_url = format!("{}?token={}", session.response.checkout_frontend_url, session.response.token);
            let page = browser.get(&page_url).send().await?.error_for_status()?.text().await?;
            if !page.contains("value=\"approve\"") {
                return Err(format!("the landing page has no approve button:\n{page}").into());
            }
            let answer = browser
                .post(format!("{}/checkout/landing", sandbox.base_url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={}&action=approve", session.response.token))
                .send()
                .await?;
            let back_to = answer.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("-");
            println!("2. approved on the landing page; the browser is sent ({}) to {back_to}", answer.status());
            checkout.get_session().reference(reference.as_str()).send().await?.into_inner()
        }
        None => {
            println!("2. open this in a browser and pay with a test user:\n   {}?token={}", session.response.checkout_frontend_url, session.response.token);
            let end = [ExternalSessionState::PaymentSuccessful, ExternalSessionState::PaymentTerminated, ExternalSessionState::SessionExpired];
            wait_for_session_state(&checkout, &reference, &end, Duration::from_secs(600), Duration::from_secs(2)).await?
        }
    };

    // 3. The callback (only the sandbox's reaches this machine).
    match callbacks {
        Some(mut callbacks) => {
            let callback = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
                .await
                .map_err(|_| "no callback within 30 s")?
                .ok_or("the receiver stopped")?;
            println!("3. callback received, authorized with the session's token: {} is {}", callback.reference, callback.session_state);
        }
        None => println!("3. the callback went to {callback_url}"),
    }

    // 4. The session as the API has it now.
    let session = if ended.session_state == ExternalSessionState::PaymentInitiated {
        checkout.get_session().reference(reference.as_str()).send().await?.into_inner()
    } else {
        ended
    };
    let payment = session.payment_details.as_ref();
    println!(
        "4. session {}: {}, payment {} of {} øre",
        session.reference,
        session.session_state,
        payment.map(|p| p.state.to_string()).unwrap_or_else(|| "-".into()),
        payment.map(|p| p.amount.value).unwrap_or_default(),
    );
    if let Some(billing) = &session.billing_details {
        println!("   paid by {} {}", billing.first_name, billing.last_name);
    }
    println!("\nDone.");
    Ok(())
}
