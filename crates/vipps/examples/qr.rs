//! QR codes: a merchant redirect QR (created, its image saved, its target changed, deleted)
//! and a one-time payment QR for an ePayment payment.
//!
//! `cargo run --example qr`
//!
//! With none of `VIPPS_CLIENT_ID`, `VIPPS_CLIENT_SECRET`, `VIPPS_SUBSCRIPTION_KEY` and
//! `VIPPS_MERCHANT_SERIAL_NUMBER` set (an empty value counts as unset) it runs offline against
//! the in-process sandbox, whose QR codes point back at the sandbox. With all four set it runs
//! against the Vipps MobilePay test environment. With only some set it stops, naming them.
//! The images are written to the system's temporary directory.

use std::error::Error;

mod shared;

use vipps::qr::types::{MerchantRedirectQrRequest, MerchantRedirectQrUpdateRequest};
use vipps::qr::{one_time_payment_qr, redirect_qr, QrFormat, QrImage};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn save(name: &str, image: &QrImage) -> Result<String> {
    let ext = match image {
        QrImage::Png(_) => "png",
        QrImage::Svg(_) => "svg",
        QrImage::TargetUrl(_) => "txt",
    };
    let path = std::env::temp_dir().join(format!("{name}.{ext}"));
    std::fs::write(&path, image.bytes())?;
    Ok(path.display().to_string())
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
    let test_only = "the QR example creates and deletes QR codes: it runs against the test environment only";
    let (vipps, _sandbox, place) = shared::connect("vipps-rs-qr-example", test_only).await?;
    println!("Running against {place}.\n");
    let qr = vipps.qr();
    let id = format!("example-{}", &uuid_like());

    // 1. A merchant redirect QR: a printable code that sends whoever scans it to a web page.
    let created = qr
        .create_merchant_redirect_qr()
        .accept(QrFormat::Png)
        .body(MerchantRedirectQrRequest::builder().id(id.as_str()).redirect_url("https://example.com/spring-sale"))
        .send()
        .await?
        .into_inner();
    println!("1. redirect QR {} → {} (image link {})", created.id.as_str(), created.redirect_url.as_str(), created.url);

    // 2. The code itself, as PNG and SVG, and the text it holds.
    let png = redirect_qr(&qr, &id, QrFormat::Png, Some(400)).await?;
    let svg = redirect_qr(&qr, &id, QrFormat::Svg, None).await?;
    let target = redirect_qr(&qr, &id, QrFormat::TargetUrl, None).await?;
    println!("2. {} ({} bytes) saved to {}", png.media_type(), png.bytes().len(), save(&id, &png)?);
    println!("   {} ({} bytes) saved to {}", svg.media_type(), svg.bytes().len(), save(&id, &svg)?);
    if let QrImage::TargetUrl(text) = &target {
        println!("   the code holds {text}");
    }

    // 3. A new target for the same printed code.
    let changed = qr
        .update_merchant_redirect_url()
        .id(id.as_str())
        .accept(QrFormat::TargetUrl)
        .body(MerchantRedirectQrUpdateRequest::builder().redirect_url("https://example.com/summer-sale"))
        .send()
        .await?
        .into_inner();
    println!("3. now → {}", changed.redirect_url.as_str());

    // 4. A one-time payment QR: the landing page of an ePayment payment, for a customer at a till.
    let reference = format!("qr-example-{}", uuid_like());
    let payment: vipps::epayment::types::CreatePaymentRequest = serde_json::from_value(serde_json::json!({
        "amount": {"currency": "NOK", "value": 4_900},
        "paymentMethod": {"type": "WALLET"},
        "reference": reference,
        "returnUrl": "https://example.com/thanks",
        "userFlow": "QR",
        "paymentDescription": "Coffee"
    }))?;
    let created = vipps.epayment().create_payment().body(payment).send().await?.into_inner();
    let landing = created.redirect_url.ok_or("the payment has no landing page")?;
    let (image, valid) = one_time_payment_qr(&qr, &landing, QrFormat::Png, Some(300)).await?;
    println!("4. payment {reference}: QR saved to {}, valid for {} s", save(&reference, &image)?, valid.as_secs());

    // 5. Cleaning up.
    qr.delete_merchant_redirect_qr().id(id.as_str()).send().await?;
    let left = qr.get_all_merchant_redirect_qrs().accept(QrFormat::TargetUrl).send().await?.into_inner();
    if left.iter().any(|q| q.id.as_str() == id) {
        return Err("the redirect QR is still listed after its deletion".into());
    }
    println!("5. redirect QR {id} deleted");
    Ok(())
}

/// Ten characters that differ from run to run, for ids the test environment keeps.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:010}", nanos % 10_000_000_000)
}
