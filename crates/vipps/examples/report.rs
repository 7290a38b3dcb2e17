//! A day's ledger that balances: ePayment payments captured and refunded, then the Report
//! API's funds and fees entries for the day, checked against them.
//!
//! `cargo run --example report`
//!
//! It runs offline against the in-process sandbox, always: it moves the sandbox's clock to the
//! next day so that the day's report is closed, and the real service takes its own time to
//! report. (The `VIPPS_*` credential variables are ignored.) The sandbox's fee model is 1.75 %
//! of each capture, rounded down (`vipps_sandbox::report::fee`). If the ledger does not balance
//! against the payments, it says where and exits with status 1.

use std::error::Error;
use std::time::Duration;

use futures::TryStreamExt;
use vipps::epayment::types::{CaptureModificationRequest, CreatePaymentRequest, ForceApprove, RefundModificationRequest};
use vipps::report::types::{Transaction, TransactionEntryType as Kind};
use vipps::report::{entries, ledgers, minor_units, Topic};
use vipps::IdempotencyKey;
use vipps_sandbox::Sandbox;

mod shared;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

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

fn amount(value: i64) -> serde_json::Value {
    serde_json::json!({"modificationAmount": {"currency": "NOK", "value": value}})
}

fn kr(ore: i64) -> String {
    format!("{}{}.{:02} kr", if ore < 0 { "-" } else { "" }, ore.abs() / 100, ore.abs() % 100)
}

fn value(t: &Transaction) -> Result<i64> {
    t.amount.as_ref().and_then(minor_units).ok_or_else(|| "an entry without a whole amount".into())
}

async fn run() -> Result<()> {
    let sandbox = Sandbox::start().await?;
    let vipps = shared::sandbox_client(&sandbox, "vipps-rs-report-example")?;
    println!("Running against the in-process sandbox at {}.\n", sandbox.base_url());
    let epayment = vipps.epayment();

    // 1. The day's trade: (reference, amount, captured, refunded), in øre.
    let orders = [("order-501", 49_900, 49_900, 0), ("order-502", 12_000, 12_000, 4_000), ("order-503", 30_000, 20_000, 0), ("order-504", 9_900, 0, 0)];
    for (reference, total, captured, refunded) in orders {
        let body: CreatePaymentRequest = serde_json::from_value(serde_json::json!({
            "amount": {"currency": "NOK", "value": total},
            "paymentMethod": {"type": "WALLET"},
            "customer": {"phoneNumber": "4791234567"},
            "reference": reference,
            "returnUrl": "https://example.com/thanks",
            "userFlow": "WEB_REDIRECT",
            "paymentDescription": "Example order"
        }))?;
        epayment.create_payment().idempotency_key(IdempotencyKey::generate()).body(body).send().await?;
        epayment.force_approve().reference(reference).body(ForceApprove::default()).send().await?;
        if captured > 0 {
            let body: CaptureModificationRequest = serde_json::from_value(amount(captured))?;
            epayment.capture_payment().reference(reference).idempotency_key(IdempotencyKey::generate()).body(body).send().await?;
        }
        if refunded > 0 {
            let body: RefundModificationRequest = serde_json::from_value(amount(refunded))?;
            epayment.refund_payment().reference(reference).idempotency_key(IdempotencyKey::generate()).body(body).send().await?;
        }
        println!("1. {reference}: {} authorized, {} captured, {} refunded", kr(total), kr(captured), kr(refunded));
    }
    let captured: i64 = orders.iter().map(|o| o.2).sum();
    let refunded: i64 = orders.iter().map(|o| o.3).sum();
    let fees: i64 = orders.iter().filter(|o| o.2 > 0).map(|o| vipps_sandbox::report::fee(o.2)).sum();

    // 2. The ledger the merchant settles in.
    let report = vipps.report();
    let handle = format!("api:{}", sandbox.credentials().merchant_serial_number);
    let found: Vec<_> = ledgers(&report, Some(&handle)).try_collect().await?;
    let ledger = found.first().and_then(|l| l.ledger_id.clone()).ok_or("no ledger settles for this merchant")?;
    println!("\n2. ledger {ledger} settles for {handle}");

    // 3. Tomorrow, today's report is closed; its funds entries, page by page.
    let day = sandbox.state().today().to_string();
    sandbox.advance_clock(Duration::from_secs(24 * 3600))?;
    let funds: Vec<Transaction> = entries(&report, &ledger, Topic::Funds, &day).try_collect().await?;
    println!("\n3. funds on {day}:");
    for t in &funds {
        println!(
            "   {:<14} {:>12}  {:<10} balance {:>12}",
            t.entry_type.as_ref().map(|k| k.to_string()).unwrap_or_default(),
            kr(value(t)?),
            t.reference.as_deref().unwrap_or(""),
            t.balance_after.as_ref().and_then(minor_units).map(kr).unwrap_or_default()
        );
    }
    let fee_entries: Vec<Transaction> = entries(&report, &ledger, Topic::Fees, &day).try_collect().await?;

    // 4. It balances: captures − refunds − fees = the funds balance.
    let sum = |items: &[Transaction], kind: Kind| -> Result<i64> {
        items.iter().filter(|t| t.entry_type.as_ref() == Some(&kind)).map(value).sum()
    };
    let net = captured - refunded - fees;
    let balance = funds.last().and_then(|t| t.balance_after.as_ref()).and_then(minor_units).unwrap_or(0);
    let checks = [
        ("captures", sum(&funds, Kind::Capture)?, captured),
        ("refunds", -sum(&funds, Kind::Refund)?, refunded),
        ("fees kept back", -sum(&funds, Kind::FeesRetained)?, fees),
        ("fees charged", sum(&fee_entries, Kind::CaptureFee)?, fees),
        ("funds balance", balance, net),
    ];
    println!("\n4. {} captured − {} refunded − {} fees = {}", kr(captured), kr(refunded), kr(fees), kr(net));
    let mut wrong = Vec::new();
    for (what, ledger_says, payments_say) in checks {
        let mark = if ledger_says == payments_say { "ok" } else { "MISMATCH" };
        println!("   {what:<15} ledger {:>12}  payments {:>12}  {mark}", kr(ledger_says), kr(payments_say));
        if ledger_says != payments_say {
            wrong.push(what);
        }
    }
    if !wrong.is_empty() {
        return Err(format!("the ledger does not balance against the payments: {}", wrong.join(", ")).into());
    }
    println!("\nThe ledger balances.");
    Ok(())
}
