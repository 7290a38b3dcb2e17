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
use vipps::Vipps;
use vipps_sandbox::Sandbox;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The variables that take the quickstart to the Vipps MobilePay test environment: all or none.
const CREDENTIALS: [&str; 4] = [
    "VIPPS_CLIENT_ID",
    "VIPPS_CLIENT_SECRET",
    "VIPPS_SUBSCRIPTION_KEY",
    "VIPPS_MERCHANT_SERIAL_NUMBER",
];

/// Whether to run against the test environment: yes when every one of [`CREDENTIALS`] is set,
/// no (the sandbox) when none is, and an error naming the missing ones when only some are.
fn use_test_environment(is_set: impl Fn(&str) -> bool) -> std::result::Result<bool, String> {
    let (set, missing): (Vec<&str>, Vec<&str>) = CREDENTIALS.iter().partition(|k| is_set(k));
    match (set.is_empty(), missing.is_empty()) {
        (true, _) => Ok(false),
        (false, true) => Ok(true),
        (false, false) => Err(format!(
            "{} set, but not {}: set all of {} to run against the Vipps MobilePay test \
             environment, or none of them to run offline against the in-process sandbox",
            set.join(", "),
            missing.join(", "),
            CREDENTIALS.join(", "),
        )),
    }
}

/// The client, and the sandbox it talks to when there are no credentials (kept alive here).
async fn connect() -> Result<(Vipps, Option<Sandbox>, String)> {
    if use_test_environment(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))? {
        if std::env::var("VIPPS_ENVIRONMENT").is_ok_and(|e| e.eq_ignore_ascii_case("production")) {
            return Err("the quickstart force-accepts an agreement, which only the test environment allows; unset VIPPS_ENVIRONMENT".into());
        }
        let vipps = vipps::VippsBuilder::from_env()?
            .system("vipps-rs-quickstart", env!("CARGO_PKG_VERSION"))
            .build()?;
        return Ok((vipps, None, "the Vipps MobilePay test environment".into()));
    }
    let sandbox = Sandbox::start().await?;
    let c = sandbox.credentials();
    let vipps = Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .merchant_serial_number(&c.merchant_serial_number)
        .system("vipps-rs-quickstart", env!("CARGO_PKG_VERSION"))
        .base_url(sandbox.base_url())
        .build()?;
    let place = format!(
        "the in-process sandbox at {} (no VIPPS_* credentials set)",
        sandbox.base_url()
    );
    Ok((vipps, Some(sandbox), place))
}

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
    let (vipps, _sandbox, place) = connect().await?;
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
        .draft_agreement_v3()
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
        .fetch_agreement_v3()
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
                .fetch_charge_v3()
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
        .capture_charge_v3()
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
        .refund_charge_v3()
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
        .create_charge_v3()
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

fn phone_number() -> String {
    std::env::var("VIPPS_TEST_PHONE_NUMBER").unwrap_or_else(|_| "4791234567".into())
}

#[cfg(test)]
mod tests {
    use super::use_test_environment;

    #[test]
    fn all_four_credentials_mean_the_test_environment_and_none_the_sandbox() {
        assert_eq!(use_test_environment(|_| true), Ok(true));
        assert_eq!(use_test_environment(|_| false), Ok(false));
    }

    #[test]
    fn some_credentials_are_an_error_naming_the_missing_ones() {
        let err = use_test_environment(|k| k == "VIPPS_CLIENT_ID" || k == "VIPPS_SUBSCRIPTION_KEY").unwrap_err();
        assert!(err.starts_with("VIPPS_CLIENT_ID, VIPPS_SUBSCRIPTION_KEY set, but not VIPPS_CLIENT_SECRET, VIPPS_MERCHANT_SERIAL_NUMBER:"), "{err}");
        // Three of four, the merchant serial number left out, is not enough either.
        let err = use_test_environment(|k| k != "VIPPS_MERCHANT_SERIAL_NUMBER").unwrap_err();
        assert!(err.contains("but not VIPPS_MERCHANT_SERIAL_NUMBER:"), "{err}");
    }
}
