//! The QR API through the facade (`vipps.qr()`, `vipps::qr::{redirect_qr, one_time_payment_qr,
//! fetch_image}`) against the sandbox: every operation, the images read back as QR codes (what
//! they hold resolves to the sandbox: a redirect to the merchant's URL, the payment's landing
//! page), the checks, and the image download's refusals of what is not the image it claims.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use vipps::qr::{fetch_image, one_time_payment_qr, redirect_qr, QrFormat, QrImage};
use vipps::Vipps;
use vipps_qr::types::{
    CustomerExchangeRequest, CustomerExchangeRequestCustomer, MerchantCallbackMobilePayPutRequest,
    MerchantCallbackPutRequest, MerchantRedirectQrRequest, MerchantRedirectQrUpdateRequest, QrExchangeRequest,
};
use vipps_sandbox::Sandbox;

/// What a PNG QR code holds, read back with a QR decoder.
fn decode_png(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale, "the sandbox draws grey PNGs");
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

fn no_redirects() -> vipps_core::reqwest::Client {
    vipps_core::reqwest::Client::builder().redirect(vipps_core::reqwest::redirect::Policy::none()).build().unwrap()
}

/// Where a scan of `url` goes: the `Location` of the sandbox's 302, or the status.
async fn scan(url: &str) -> Result<String, u16> {
    let answer = no_redirects().get(url).send().await.expect("the sandbox answers");
    match answer.status().as_u16() {
        302 => Ok(answer.headers()["location"].to_str().unwrap().to_owned()),
        other => Err(other),
    }
}

fn redirect_body(id: &str, url: &str) -> MerchantRedirectQrRequest {
    MerchantRedirectQrRequest::builder().id(id).redirect_url(url).try_into().expect("a valid body")
}

#[tokio::test]
async fn merchant_redirect_qr_codes_are_created_read_listed_changed_and_deleted() {
    let (sandbox, vipps) = support::start().await;
    let msn = &sandbox.credentials().merchant_serial_number;
    let qr = vipps.qr();

    let created = qr
        .create_merchant_redirect_qr()
        .accept(QrFormat::Png)
        .size(300)
        .body(redirect_body("billboard_1", "https://shop.example.com/spring"))
        .send()
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.id.as_str(), "billboard_1");
    assert_eq!(created.redirect_url.as_str(), "https://shop.example.com/spring");
    assert_eq!(created.expires_in, Some(-1), "no ttl: never expires");

    // The image is a real QR code of the sandbox's scan URL, 300 px square.
    let image = fetch_image(&qr, &created.url).await.expect("the image");
    let QrImage::Png(png_bytes) = &image else { panic!("asked for PNG, got {}", image.media_type()) };
    let header = png::Decoder::new(std::io::Cursor::new(png_bytes.as_slice())).read_info().unwrap().info().clone();
    assert_eq!((header.width, header.height), (300, 300));
    let content = decode_png(png_bytes);
    assert_eq!(content, format!("{}/qr/r/{msn}/billboard_1", sandbox.base_url()));
    assert_eq!(scan(&content).await, Ok("https://shop.example.com/spring".to_owned()));

    // text/targetUrl gives the content without an image.
    let target = redirect_qr(&qr, "billboard_1", QrFormat::TargetUrl, None).await.expect("the target");
    assert_eq!(target, QrImage::TargetUrl(content.clone()));
    // SVG, through the one-step helper.
    let svg = redirect_qr(&qr, "billboard_1", QrFormat::Svg, Some(200)).await.expect("the SVG");
    assert_eq!(svg.media_type(), "image/svg+xml");
    assert!(matches!(&svg, QrImage::Svg(s) if s.contains("<svg") && s.contains("200")), "{svg:?}");

    // Another one, then the list holds both.
    qr.create_merchant_redirect_qr()
        .accept(QrFormat::TargetUrl)
        .body(MerchantRedirectQrRequest::builder().id("poster 2").redirect_url("https://shop.example.com/").ttl(600))
        .send()
        .await
        .expect("the second one");
    let all = qr.get_all_merchant_redirect_qrs().accept(QrFormat::TargetUrl).send().await.unwrap().into_inner();
    let ids: Vec<&str> = all.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["billboard_1", "poster 2"]);
    assert!(all[1].expires_in.is_some_and(|s| (590..=600).contains(&s)), "{:?}", all[1].expires_in);
    // An id with a space still scans.
    assert_eq!(all[1].url, format!("{}/qr/r/{msn}/poster%202", sandbox.base_url()));
    assert_eq!(scan(&all[1].url).await, Ok("https://shop.example.com/".to_owned()));
    // Reading a code again gives the same image link: the sandbox keeps one image per code.
    let png = || qr.get_merchant_redirect_qr_by_id().id("billboard_1").accept(QrFormat::Png).send();
    assert_eq!(png().await.unwrap().into_inner().url, png().await.unwrap().into_inner().url);

    // Changing the target changes where the same code goes.
    let changed = qr
        .update_merchant_redirect_url()
        .id("billboard_1")
        .accept(QrFormat::TargetUrl)
        .body(MerchantRedirectQrUpdateRequest::builder().redirect_url("https://shop.example.com/summer"))
        .send()
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(changed.url, content, "the code stays the same");
    assert_eq!(scan(&content).await, Ok("https://shop.example.com/summer".to_owned()));

    // The same id again is a conflict.
    let again = qr
        .create_merchant_redirect_qr()
        .accept(QrFormat::Png)
        .body(redirect_body("billboard_1", "https://shop.example.com/x"))
        .send()
        .await
        .expect_err("a conflict");
    assert_eq!(again.status(), Some(409));

    // Deleted: gone from the API and the scan.
    qr.delete_merchant_redirect_qr().id("billboard_1").send().await.expect("deleted");
    let gone = qr.get_merchant_redirect_qr_by_id().id("billboard_1").accept(QrFormat::Png).send().await.expect_err("gone");
    assert_eq!(gone.status(), Some(404));
    assert_eq!(scan(&content).await, Err(404));
    assert_eq!(sandbox.state().qr.lock().unwrap().redirect_count(), 1);
}

#[tokio::test]
async fn a_redirect_qr_with_a_ttl_expires_on_the_sandbox_clock() {
    let (sandbox, vipps) = support::start().await;
    let qr = vipps.qr();
    let created = qr
        .create_merchant_redirect_qr()
        .accept(QrFormat::TargetUrl)
        .body(MerchantRedirectQrRequest::builder().id("flyer").redirect_url("https://shop.example.com/").ttl(300))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scan(&created.url).await, Ok("https://shop.example.com/".into()));
    sandbox.advance_clock(Duration::from_secs(301)).unwrap();
    assert_eq!(scan(&created.url).await, Err(404));
    let gone = qr.get_merchant_redirect_qr_by_id().id("flyer").accept(QrFormat::Png).send().await.expect_err("expired");
    assert_eq!(gone.status(), Some(404));
}

#[tokio::test]
async fn bad_redirect_input_is_refused_before_sending_or_named_by_the_sandbox() {
    let (sandbox, vipps) = support::start().await;
    let qr = vipps.qr();
    // The spec's pattern wants https: the generated type refuses it, nothing is sent.
    let calls = sandbox.state().calls.load(std::sync::atomic::Ordering::SeqCst);
    let err = qr
        .create_merchant_redirect_qr()
        .accept(QrFormat::Png)
        .body(MerchantRedirectQrRequest::builder().id("a").redirect_url("http://shop.example.com/"))
        .send()
        .await
        .expect_err("refused");
    assert!(matches!(err, vipps::Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("redirect_url"), "{err}");
    assert_eq!(sandbox.state().calls.load(std::sync::atomic::Ordering::SeqCst), calls, "nothing was sent");
    // A size outside 100..=2000 is refused by the helper before sending.
    let err = redirect_qr(&qr, "a", QrFormat::Png, Some(99)).await.expect_err("refused");
    assert!(matches!(err, vipps::Error::InvalidInput { .. }), "{err:?}");

    // What the types cannot check, the sandbox names: a ttl under 300, a bad Accept.
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/qr/v1/merchant-redirect")
            .await
            .header("Accept", "image/png")
            .json(&json!({"id": "x", "redirectUrl": "https://shop.example.com/", "ttl": 10})),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "ttl"), "{answer}");
    let (status, _) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/qr/v1/merchant-redirect")
            .await
            .header("Accept", "application/pdf")
            .json(&json!({"id": "x", "redirectUrl": "https://shop.example.com/"})),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(sandbox.state().qr.lock().unwrap().redirect_count(), 0, "nothing was created");
}

async fn create_payment(vipps: &Vipps, reference: &str) -> String {
    let body: vipps_epayment::types::CreatePaymentRequest = serde_json::from_value(json!({
        "amount": {"currency": "NOK", "value": 12_900},
        "paymentMethod": {"type": "WALLET"},
        "reference": reference,
        "returnUrl": "https://shop.example.com/return",
        "userFlow": "QR",
        "paymentDescription": "A cinema ticket"
    }))
    .unwrap();
    vipps.epayment().create_payment().body(body).send().await.expect("a payment").into_inner().redirect_url.expect("a landing page")
}

#[tokio::test]
async fn a_one_time_payment_qr_holds_the_landing_page_and_expires_with_the_payment() {
    let (sandbox, vipps) = support::start().await;
    let landing = create_payment(&vipps, "ticket-0001").await;
    assert!(landing.starts_with(&format!("{}/epayment/v1/landing/", sandbox.base_url())), "{landing}");

    let (image, valid) = one_time_payment_qr(&vipps.qr(), &landing, QrFormat::Png, Some(400)).await.expect("a QR");
    let QrImage::Png(png_bytes) = &image else { panic!("a PNG") };
    assert_eq!(decode_png(png_bytes), landing, "the code opens the payment's landing page");
    assert!(valid <= Duration::from_secs(300) && valid >= Duration::from_secs(290), "{valid:?}");

    // The raw call, to keep the image link, and the SVG flavour.
    let answer = vipps
        .qr()
        .generate_otp_qr()
        .accept(QrFormat::Svg)
        .body(vipps_qr::types::OneTimePaymentQrRequest { url: landing.clone() })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(fetch_image(&vipps.qr(), &answer.url).await, Ok(QrImage::Svg(_))));

    // A URL that is not one of the sandbox's landing pages is a 400 naming `url`.
    let err = one_time_payment_qr(&vipps.qr(), "https://example.com/pay", QrFormat::Png, None).await.expect_err("refused");
    assert_eq!(err.status(), Some(400));
    let named = err.problem().and_then(|p| p.extra_details.clone()).map(|d| d[0]["name"].clone());
    assert_eq!(named, Some(json!("url")), "{err}");

    // A landing page too long for a QR code is refused when the code is made, not when drawn.
    let long = format!("{landing}&pad={}", "x".repeat(3_000));
    let err = one_time_payment_qr(&vipps.qr(), &long, QrFormat::Png, None).await.expect_err("too long");
    assert_eq!(err.status(), Some(400), "{err}");

    // Once the payment expires, so do the code and its image.
    sandbox.advance_clock(Duration::from_secs(301)).unwrap();
    let gone = fetch_image(&vipps.qr(), &answer.url).await.expect_err("expired");
    assert_eq!(gone.status(), Some(404));
    let err = one_time_payment_qr(&vipps.qr(), &landing, QrFormat::Png, None).await.expect_err("expired");
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn merchant_callback_qr_codes_beacons_and_the_exchanges() {
    let (sandbox, vipps) = support::start().await;
    let msn = sandbox.credentials().merchant_serial_number.clone();
    let qr = vipps.qr();
    qr.put_merchant_callback_qr()
        .merchant_qr_id("till-1")
        .body(MerchantCallbackPutRequest::builder().location_description("Kasse 1"))
        .send()
        .await
        .expect("created");
    qr.put_merchant_callback_mobile_pay_qr()
        .beacon_id("100000000001")
        .body(MerchantCallbackMobilePayPutRequest::builder().location_description("Kiosk"))
        .send()
        .await
        .expect("mapped");
    let one = qr.get_merchant_callback_by_id().merchant_qr_id("till-1").send().await.unwrap().into_inner();
    assert_eq!(one.location_description.as_deref(), Some("Kasse 1"));
    assert_eq!(one.merchant_serial_number.as_deref(), Some(msn.as_str()));
    // SVG unless PNG is asked for, as the spec says.
    let image = fetch_image(&qr, one.qr_image_url.as_deref().unwrap()).await.unwrap();
    assert_eq!(image.media_type(), "image/svg+xml");
    let all = qr
        .get_merchant_callback_qrs()
        .qr_image_format(vipps_qr::types::GetMerchantCallbackQrsQrImageFormat::Png)
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<_> = all.iter().filter_map(|q| q.merchant_qr_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["100000000001", "till-1"]);
    let QrImage::Png(png_bytes) = fetch_image(&qr, all[0].qr_image_url.as_deref().unwrap()).await.unwrap() else {
        panic!("a PNG")
    };
    assert_eq!(Some(decode_png(&png_bytes)), all[0].qr_content);

    // Another merchant may not take the beacon.
    let other = vipps.merchant("654321").unwrap().qr();
    let err = other
        .put_merchant_callback_mobile_pay_qr()
        .beacon_id("100000000001")
        .body(MerchantCallbackMobilePayPutRequest::builder().location_description("Stolen"))
        .send()
        .await
        .expect_err("a conflict");
    assert_eq!(err.status(), Some(409));
    // A location description over 36 characters is refused before sending.
    let err = qr
        .put_merchant_callback_qr()
        .merchant_qr_id("till-2")
        .body(MerchantCallbackPutRequest::builder().location_description("x".repeat(37)))
        .send()
        .await
        .expect_err("too long");
    assert!(matches!(err, vipps::Error::InvalidInput { .. }), "{err:?}");

    qr.delete_merchant_callback_qr().merchant_qr_id("till-1").send().await.expect("deleted");
    let gone = qr.get_merchant_callback_by_id().merchant_qr_id("till-1").send().await.expect_err("gone");
    assert_eq!(gone.status(), Some(404));

    let exchanged = qr
        .exchange_qr()
        .body(QrExchangeRequest::builder().qr_code("https://qr.example/p/abc"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exchanged.msisdn, vipps_sandbox::qr::EXCHANGE_MSISDN);
    assert_eq!(exchanged.version, "2.0");
    let customer = qr
        .exchange_customer()
        .body(
            CustomerExchangeRequest::builder()
                .customer(CustomerExchangeRequestCustomer::builder().customer_token("eyJra"))
                .requested_data(vec![vipps_qr::types::RequestedData::Msisdn]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(customer.msisdn, vipps_sandbox::qr::EXCHANGE_MSISDN);
    let err = qr
        .exchange_customer()
        .body(
            CustomerExchangeRequest::builder()
                .customer(CustomerExchangeRequestCustomer::default())
                .requested_data(vec![vipps_qr::types::RequestedData::Msisdn]),
        )
        .send()
        .await
        .expect_err("no token");
    assert_eq!(err.status(), Some(400));
}

/// A loopback server answering every request with `content_type` and `body`.
async fn serve(content_type: &'static str, body: Vec<u8>) -> String {
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(http::header::CONTENT_TYPE, content_type)], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/image")
}

#[tokio::test]
async fn the_download_refuses_what_is_not_the_image_it_claims() {
    let sandbox = Sandbox::start().await.unwrap();
    let qr = support::builder(&sandbox).max_response_size(10_000).build().unwrap().qr();
    let html = serve("text/html", b"<html>hi</html>".to_vec()).await;
    let err = fetch_image(&qr, &html).await.expect_err("not an image");
    assert!(matches!(&err, vipps::Error::MalformedResponse { message, .. } if message.contains("text/html")), "{err:?}");
    let fake_png = serve("image/png", b"GIF89a....".to_vec()).await;
    assert!(matches!(fetch_image(&qr, &fake_png).await, Err(vipps::Error::MalformedResponse { .. })));
    let fake_svg = serve("image/svg+xml", vec![0xff, 0xfe, 0x00]).await;
    assert!(matches!(fetch_image(&qr, &fake_svg).await, Err(vipps::Error::MalformedResponse { .. })));
    let huge = serve("image/png", vec![0u8; 20_000]).await;
    assert!(matches!(fetch_image(&qr, &huge).await, Err(vipps::Error::ResponseTooLarge { limit: 10_000 })));
    // And no credentials go with it: a server that would see them.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap| {
        let log = log.clone();
        async move {
            log.lock().unwrap().extend(headers.keys().map(|k| k.as_str().to_owned()));
            ([(http::header::CONTENT_TYPE, "image/svg+xml")], "<svg/>")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    qr.get_all_merchant_redirect_qrs().accept(QrFormat::Png).send().await.expect("a token is fetched first");
    assert!(matches!(fetch_image(&qr, &format!("http://{addr}/i")).await, Ok(QrImage::Svg(_))));
    let seen = seen.lock().unwrap().clone();
    for secret in ["authorization", "ocp-apim-subscription-key", "merchant-serial-number"] {
        assert!(!seen.iter().any(|h| h == secret), "{secret} was sent: {seen:?}");
    }
}
