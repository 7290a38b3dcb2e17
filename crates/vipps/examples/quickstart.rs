//! A whole subscription flow, step by step: token, draft agreement, force-accept, the initial
//! charge reserved and captured, a partial refund, next month's charge, and the charge list.
//!
//! `cargo run --example quickstart`
//!
//! With none of `VIPPS_CLIENT_ID`, `VIPPS_CLIENT_SECRET`, `VIPPS_SUBSCRIPTION_KEY` and
//! `VIPPS_MERCHANT_SERIAL_NUMBER` set (an empty value counts as unset) it starts the
//! in-process sandbox (`vipps-sandbox`) and runs against that, offline. With all four set, it
//! runs against the Vipps MobilePay test environment (force-accept exists only there);
//! `VIPPS_TEST_PHONE_NUMBER` names the test user who accepts the agreement. With only some of
//! them set it stops before doing anything, naming the ones that are missing.

use std::error::Error;
use std::time::Duration;

use vipps::recurring::{charges, collect, wait_for_agreement_status};
use vipps::recurring::types::{
    AgreementStatus, CaptureRequestV3, ChargeStatus, ChargeResponseV3, CreateChargeV3, CurrencyV3,
    DraftAgreementV3, ForceAcceptAgreementV3, InitialChargeV3, InitialChargeV3TransactionType,
    PricingRequest, PricingRequestType, RefundRequest, TimePeriod, TimePeriodUnit, TransactionType,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

// Where to run (the sandbox, or the test environment with all four VIPPS_* credentials), shared
// with the other examples.
mod shared;
use shared::phone_number;

fn describe(c: &ChargeResponseV3) -> String {
    let s = &c.summary;
    format!(
        "{} {} {} øre, due {} (captured {}, refunded {}, cancelled {})",
        c.id.as_str(),
        c.status,
        c.amount,
        c.due.date_naive(),
        s.captured,
        s.refunded,
        s.cancelled
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
    let test_only = "the quickstart force-accepts an agreement, which only the test environment allows";
    let (vipps, _sandbox, place) = shared::connect("vipps-rs-quickstart", test_only).await?;
    println!("Running against {place}.\n");
    let recurring = vipps.recurring();

    // 1. An access token. The SDK fetches and refreshes tokens on its own; this shows the raw
    //    response (never the token itself).
    let token = vipps
        .access_token()
        .fetch_access_token()
        .send()
        .await?
        .into_inner();
    println!(
        "1. token: {} token, valid for {} s",
        token.token_type, token.expires_in
    );

    // 2. A draft agreement: 299 kr a month, with an initial charge to reserve at acceptance.
    let draft = DraftAgreementV3::builder()
        .product_name("Premium membership")
        .product_description("Monthly premium membership")
        .pricing(
            PricingRequest::builder()
                .type_(PricingRequestType::Legacy)
                .amount(29_900)
                .currency(CurrencyV3::Nok),
        )
        .interval(TimePeriod::builder().unit(TimePeriodUnit::Month).count(1))
        .initial_charge(
            InitialChargeV3::builder()
                .amount(29_900)
                .description("First month")
                .transaction_type(InitialChargeV3TransactionType::ReserveCapture),
        )
        .merchant_redirect_url("https://example.com/subscription/return")
        .merchant_agreement_url("https://example.com/my-subscriptions")
        .phone_number(phone_number());
    let created = recurring
        .draft_agreement()
        .body(draft)
        .send()
        .await?
        .into_inner();
    let agreement_id = created.agreement_id.clone();
    let initial_charge = created
        .charge_id
        .clone()
        .ok_or("the draft agreement has no initial charge")?;
    println!(
        "2. draft agreement: {agreement_id}, initial charge {}, confirmation URL {}",
        initial_charge.as_str(),
        created.vipps_confirmation_url.as_deref().unwrap_or("-")
    );
    let pending = recurring
        .fetch_agreement()
        .agreement_id(&agreement_id)
        .send()
        .await?
        .into_inner();
    println!(
        "   status: {}",
        pending.status.map(|s| s.to_string()).unwrap_or_default()
    );

    // 3. Force-accept, as the test user would in the app (test environment only).
    recurring
        .force_accept_agreement()
        .agreement_id(&agreement_id)
        .body(ForceAcceptAgreementV3 {
            phone_number: phone_number(),
        })
        .send()
        .await?;
    let active = wait_for_agreement_status(
        &recurring,
        &agreement_id,
        AgreementStatus::Active,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await?;
    println!(
        "3. force-accepted: agreement {} is {}",
        active.id.as_str(),
        active.status.map(|s| s.to_string()).unwrap_or_default()
    );

    // 4. The initial charge is reserved once the agreement is accepted (at once in the
    //    sandbox; within seconds in the test environment).
    let fetch = |charge_id: String| {
        let recurring = recurring.clone();
        let agreement_id = agreement_id.clone();
        async move {
            recurring
                .fetch_charge()
                .agreement_id(agreement_id)
                .charge_id(charge_id)
                .send()
                .await
                .map(|r| r.into_inner())

        }
    };
    let mut charge = fetch(initial_charge.to_string()).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while charge.status != ChargeStatus::Reserved {
        if tokio::time::Instant::now() > until {
            return Err(format!("the initial charge is still {} after 30 s", charge.status).into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        charge = fetch(initial_charge.to_string()).await?;
    }
    println!("4. charge: {}", describe(&charge));

    // 5. Capture it in full.
    recurring
        .capture_charge()
        .agreement_id(&agreement_id)
        .charge_id(initial_charge.as_str())
        .body(CaptureRequestV3::builder().amount(charge.amount).description("Delivered"))
        .send()
        .await?;
    println!(
        "5. captured: {}",
        describe(&fetch(initial_charge.to_string()).await?)
    );

    // 6. Refund part of it.
    recurring
        .refund_charge()
        .agreement_id(&agreement_id)
        .charge_id(initial_charge.as_str())
        .body(RefundRequest::builder().amount(10_000).description("Goodwill refund"))
        .send()
        .await?;
    println!(
        "6. partially refunded: {}",
        describe(&fetch(initial_charge.to_string()).await?)
    );

    // 7. Next month's charge, due in 30 days.
    let due = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let next = recurring
        .create_charge()
        .agreement_id(&agreement_id)
        .body(
            CreateChargeV3::builder()
                .amount(29_900)
                .description("Second month")
                .due(due)
                .retry_days(5)
                .transaction_type(TransactionType::DirectCapture),
        )
        .send()
        .await?
        .into_inner();
    println!(
        "7. next charge: {} due {due}",
        next.charge_id.as_deref().unwrap_or("-")
    );

    // 8. Every charge of the agreement, following Continuation-Token pages.
    let all = collect(charges(&recurring, &agreement_id, None)).await?;
    println!("8. charges of {agreement_id}: {}", all.len());
    for c in &all {
        println!("   - {}", describe(c));
    }
    println!("\nDone.");
    Ok(())
}
