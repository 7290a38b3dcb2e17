//! The sandbox's landing pages over plain HTTP: an ePayment payment's `redirectUrl` and a
//! Recurring agreement's `vippsConfirmationUrl` open an HTML page showing what is asked, with
//! every value escaped; its form approves or rejects, and the answer is a 303 to the
//! merchant's return URL. Bad links (no token, a wrong token, an unknown payment or
//! agreement, one that no longer waits) get an HTML error page with a 4xx and change nothing;
//! cross-site posts are refused. `tests/browser.rs` drives the same pages in Chromium.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use vipps::Vipps;
use vipps_epayment::types::{CreatePaymentRequest, PaymentEventName, State};
use vipps_recurring::types::{ChargeStatus, DraftAgreementV3, ForceAcceptAgreementV3};
use vipps_sandbox::Sandbox;

const RETURN_URL: &str = "https://shop.example.com/return?order=1";
const REDIRECT_URL: &str = "https://example.com/redirect";
const PHONE: &str = "4791234567";

/// A plain client that does not follow redirects: the 303 is what is checked.
fn http() -> vipps_core::reqwest::Client {
    vipps_core::reqwest::Client::builder()
        .redirect(vipps_core::reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

struct Page {
    status: u16,
    content_type: String,
    location: Option<String>,
    headers: vipps_core::reqwest::header::HeaderMap,
    html: String,
}

async fn read(response: vipps_core::reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().expect("ASCII").to_owned());
    let (content_type, location) = (header("content-type").unwrap_or_default(), header("location"));
    let html = response.text().await.expect("a body");
    Page { status, content_type, location, headers, html }
}

async fn get(url: &str) -> Page {
    read(http().get(url).send().await.expect("the sandbox answers")).await
}

/// Posts the page's form as a browser does (same origin), with `fields` form-encoded.
async fn post(sandbox: &Sandbox, url: &str, fields: &[(&str, &str)]) -> Page {
    post_with(url, fields, &[("origin", sandbox.base_url()), ("sec-fetch-site", "same-origin")]).await
}

async fn post_with(url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
    let mut request = http().post(url).form(fields);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.expect("the sandbox answers")).await
}

/// The landing page's URL without its query, and the token in it.
fn split(url: &str) -> (String, String) {
    let (page, token) = url.split_once("?token=").expect("a link with a token");
    (page.to_owned(), token.to_owned())
}

fn payment_body(reference: &str, flow: &str) -> CreatePaymentRequest {
    let mut body = json!({
        "amount": {"currency": "NOK", "value": 1500},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": PHONE},
        "reference": reference,
        "userFlow": flow,
        "paymentDescription": "Tea & \"cakes\" <b>for two</b>"
    });
    if flow == "WEB_REDIRECT" {
        body["returnUrl"] = json!(RETURN_URL);
    }
    serde_json::from_value(body).expect("a valid body")
}

async fn create_payment(vipps: &Vipps, reference: &str, flow: &str) -> String {
    let created = vipps.epayment().create_payment().body(payment_body(reference, flow)).send().await.unwrap();
    created.into_inner().redirect_url.expect("a redirect URL")
}

async fn payment_state(vipps: &Vipps, reference: &str) -> (State, Vec<PaymentEventName>) {
    let payment = vipps.epayment().get_payment().reference(reference).send().await.unwrap().into_inner();
    let events = vipps.epayment().get_payment_event_log().reference(reference).send().await.unwrap().into_inner();
    (payment.state, events.into_iter().filter_map(|e| e.name).collect())
}

/// Form fields, as `(name, value)`.
type Form<'a> = &'a [(&'a str, &'a str)];

fn assert_html_error(page: &Page, status: u16, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.html);
    assert!(page.content_type.starts_with("text/html"), "{what}: {}", page.content_type);
    assert!(page.html.contains("id=\"error\""), "{what}: {}", page.html);
    assert!(!page.html.contains("id=\"approve\""), "{what}: no form on an error page");
}

#[tokio::test]
async fn approving_on_the_payment_page_authorizes_it_and_sends_the_customer_back() {
    let (sandbox, vipps) = support::start().await;
    let redirect = create_payment(&vipps, "order-landing-1", "WEB_REDIRECT").await;
    assert!(redirect.starts_with(&format!("{}/epayment/v1/landing/order-landing-1?token=", sandbox.base_url())));

    let page = get(&redirect).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.html.contains("<dd id=\"amount\">15.00 NOK</dd>"), "{}", page.html);
    assert!(page.html.contains("<dd id=\"merchant\">Sales unit 123456</dd>"), "{}", page.html);
    assert!(page.html.contains("Tea &amp; \"cakes\" &lt;b&gt;for two&lt;/b&gt;"), "escaped: {}", page.html);
    assert!(!page.html.contains("<b>"), "{}", page.html);
    assert!(!page.html.contains("<script"), "{}", page.html);
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));

    let (url, token) = split(&redirect);
    let answer = post(&sandbox, &url, &[("token", &token), ("decision", "approve")]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some(RETURN_URL)), "{}", answer.html);
    let (state, events) = payment_state(&vipps, "order-landing-1").await;
    assert_eq!(state, State::Authorized);
    assert_eq!(events, [PaymentEventName::Created, PaymentEventName::Authorized]);

    // Answered once: the page and the form now say it no longer waits.
    let again = post(&sandbox, &url, &[("token", &token), ("decision", "reject")]).await;
    assert_html_error(&again, 409, "a second answer");
    assert!(again.html.contains("AUTHORIZED"), "{}", again.html);
    assert_html_error(&get(&redirect).await, 409, "the page after the answer");
    assert_eq!(payment_state(&vipps, "order-landing-1").await.0, State::Authorized);
}

#[tokio::test]
async fn rejecting_on_the_payment_page_aborts_it() {
    let (sandbox, vipps) = support::start().await;
    let (url, token) = split(&create_payment(&vipps, "order-landing-2", "WEB_REDIRECT").await);
    let answer = post(&sandbox, &url, &[("token", &token), ("decision", "reject")]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some(RETURN_URL)), "{}", answer.html);
    let (state, events) = payment_state(&vipps, "order-landing-2").await;
    assert_eq!(state, State::Aborted);
    assert_eq!(events, [PaymentEventName::Created, PaymentEventName::Aborted]);
    // An aborted payment cannot be approved any more.
    let approve = vipps_epayment::types::ForceApprove::default();
    let err = vipps.epayment().force_approve().reference("order-landing-2").body(approve).send().await;
    assert_eq!(err.unwrap_err().status(), Some(409));
}

#[tokio::test]
async fn a_payment_without_a_return_url_ends_on_a_page_of_its_own() {
    let (sandbox, vipps) = support::start().await;
    let (url, token) = split(&create_payment(&vipps, "order-landing-3", "PUSH_MESSAGE").await);
    let answer = post(&sandbox, &url, &[("token", &token), ("decision", "approve")]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (200, None), "{}", answer.html);
    assert!(answer.html.contains("Payment approved"), "{}", answer.html);
    assert_eq!(payment_state(&vipps, "order-landing-3").await.0, State::Authorized);
}

#[tokio::test]
async fn bad_payment_links_get_an_html_error_page_and_change_nothing() {
    let (sandbox, vipps) = support::start().await;
    let redirect = create_payment(&vipps, "order-landing-4", "WEB_REDIRECT").await;
    let (url, token) = split(&redirect);
    let base = sandbox.base_url();
    let wrong = "0".repeat(token.len());

    assert_html_error(&get(&url).await, 400, "no token");
    assert_html_error(&get(&format!("{url}?token=")).await, 400, "an empty token");
    assert_html_error(&get(&format!("{url}?token={wrong}")).await, 403, "a wrong token");
    let unknown = get(&format!("{base}/epayment/v1/landing/order-nobody-has?token={token}")).await;
    assert_html_error(&unknown, 404, "an unknown reference");
    let hostile = get(&format!("{base}/epayment/v1/landing/%3Cscript%3Ealert(1)%3C%2Fscript%3E?token=x")).await;
    assert_html_error(&hostile, 404, "a reference with markup");
    assert!(hostile.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", hostile.html);
    assert!(!hostile.html.contains("<script>"), "{}", hostile.html);

    let cases: [(Form, u16, &str); 4] = [
        (&[("decision", "approve")], 400, "a form without a token"),
        (&[("token", &wrong), ("decision", "approve")], 403, "a form with a wrong token"),
        (&[("token", &token), ("decision", "maybe")], 400, "an unknown decision"),
        (&[("token", &token)], 400, "no decision"),
    ];
    for (fields, status, what) in cases {
        assert_html_error(&post(&sandbox, &url, fields).await, status, what);
    }
    // Cross-site posts are refused, even with the right token.
    let fields = [("token", token.as_str()), ("decision", "approve")];
    let evil = post_with(&url, &fields, &[("origin", "http://evil.example")]).await;
    assert_html_error(&evil, 403, "another origin");
    let evil = post_with(&url, &fields, &[("sec-fetch-site", "cross-site")]).await;
    assert_html_error(&evil, 403, "a cross-site fetch");
    let evil = post_with(&url, &fields, &[("origin", "null")]).await;
    assert_html_error(&evil, 403, "an opaque origin");

    let (state, events) = payment_state(&vipps, "order-landing-4").await;
    assert_eq!((state, events), (State::Created, vec![PaymentEventName::Created]), "nothing changed");

    // Once expired, the page says so.
    sandbox.advance_clock(std::time::Duration::from_secs(6 * 60)).unwrap();
    let expired = get(&redirect).await;
    assert_html_error(&expired, 409, "an expired payment");
    assert!(expired.html.contains("EXPIRED"), "{}", expired.html);
}

#[tokio::test]
async fn landing_pages_need_no_credentials_and_are_not_failed_by_injected_faults() {
    let (sandbox, vipps) = support::start().await;
    let redirect = create_payment(&vipps, "order-landing-5", "WEB_REDIRECT").await;
    sandbox.fail_next(1, 503);
    assert_eq!(get(&redirect).await.status, 200, "the page is neither failed nor asks for a token");
    // The planned failure is still there for the next API call.
    let read = support::raw_request(&sandbox, "GET", "/epayment/v1/payments/order-landing-5").await;
    let (status, _) = support::raw_send(read).await;
    assert_eq!(status, 503);
}

fn draft_body(initial: Option<(&str, i32)>, is_app: bool) -> DraftAgreementV3 {
    let mut body = json!({
        "pricing": {"type": "LEGACY", "amount": 29900, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": REDIRECT_URL,
        "merchantAgreementUrl": "https://example.com/agreement",
        "phoneNumber": PHONE,
        "productName": "News & <i>more</i>",
        "isApp": is_app
    });
    if let Some((transaction_type, amount)) = initial {
        body["initialCharge"] =
            json!({"amount": amount, "description": "First <month>", "transactionType": transaction_type});
    }
    serde_json::from_value(body).expect("a valid draft")
}

/// Drafts an agreement: its id, initial charge id and confirmation URL.
async fn draft(vipps: &Vipps, initial: Option<(&str, i32)>, is_app: bool) -> (String, Option<String>, String) {
    let answer = vipps.recurring().draft_agreement().body(draft_body(initial, is_app)).send().await.unwrap();
    let answer = answer.into_inner();
    (answer.agreement_id, answer.charge_id.map(|c| c.to_string()), answer.vipps_confirmation_url.expect("a URL"))
}

async fn agreement(vipps: &Vipps, id: &str) -> Value {
    let a = vipps.recurring().fetch_agreement().agreement_id(id).send().await.unwrap().into_inner();
    serde_json::to_value(a).unwrap()
}

async fn charge_status(vipps: &Vipps, agreement_id: &str, charge_id: &str) -> ChargeStatus {
    let c = vipps.recurring().fetch_charge().agreement_id(agreement_id).charge_id(charge_id).send().await.unwrap();
    c.into_inner().status
}

#[tokio::test]
async fn accepting_on_the_agreement_page_activates_it_and_settles_the_initial_charge() {
    let (sandbox, vipps) = support::start().await;
    let (id, charge, confirmation) = draft(&vipps, Some(("RESERVE_CAPTURE", 4900)), false).await;
    let charge = charge.expect("an initial charge");
    assert!(confirmation.starts_with(&format!("{}/recurring/v3/landing/{id}?token=", sandbox.base_url())));

    let page = get(&confirmation).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("<dd id=\"product\">News &amp; &lt;i&gt;more&lt;/i&gt;</dd>"), "{}", page.html);
    assert!(page.html.contains("<dd id=\"price\">299.00 NOK every month</dd>"), "{}", page.html);
    assert!(page.html.contains("<dd id=\"initial\">49.00 NOK: First &lt;month&gt;</dd>"), "{}", page.html);
    let phone_field = format!("name=\"phoneNumber\" inputmode=\"numeric\" value=\"{PHONE}\"");
    assert!(page.html.contains(&phone_field), "{}", page.html);

    let (url, token) = split(&confirmation);
    let bad_phone = post(&sandbox, &url, &[("token", &token), ("decision", "approve"), ("phoneNumber", "47 12")]).await;
    assert_html_error(&bad_phone, 400, "a phone number that is not one");
    assert_eq!(agreement(&vipps, &id).await["status"], "PENDING");

    let answer = post(&sandbox, &url, &[("token", &token), ("decision", "approve"), ("phoneNumber", PHONE)]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some(REDIRECT_URL)), "{}", answer.html);
    let accepted = agreement(&vipps, &id).await;
    assert_eq!(accepted["status"], "ACTIVE");
    assert!(accepted["start"].is_string(), "{accepted}");
    assert_eq!(charge_status(&vipps, &id, &charge).await, ChargeStatus::Reserved);

    assert_html_error(&post(&sandbox, &url, &[("token", &token), ("decision", "reject")]).await, 409, "answered");
    assert_html_error(&get(&confirmation).await, 409, "the page once answered");
    assert_eq!(agreement(&vipps, &id).await["status"], "ACTIVE");
}

#[tokio::test]
async fn rejecting_on_the_agreement_page_stops_it_and_cancels_the_initial_charge() {
    let (sandbox, vipps) = support::start().await;
    let (id, charge, confirmation) = draft(&vipps, Some(("DIRECT_CAPTURE", 4900)), false).await;
    let (url, token) = split(&confirmation);
    let answer = post(&sandbox, &url, &[("token", &token), ("decision", "reject")]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some(REDIRECT_URL)), "{}", answer.html);
    let rejected = agreement(&vipps, &id).await;
    assert_eq!(rejected["status"], "STOPPED");
    assert!(rejected["stop"].is_string(), "{rejected}");
    assert_eq!(charge_status(&vipps, &id, &charge.unwrap()).await, ChargeStatus::Cancelled);
    let accept = vipps
        .recurring()
        .force_accept_agreement()
        .agreement_id(&id)
        .body(ForceAcceptAgreementV3 { phone_number: PHONE.into() })
        .send()
        .await;
    assert_eq!(accept.unwrap_err().status(), Some(409), "a rejected agreement stays rejected");
}

#[tokio::test]
async fn bad_agreement_links_get_an_html_error_page_and_app_agreements_keep_their_app_link() {
    let (sandbox, vipps) = support::start().await;
    let (id, _, confirmation) = draft(&vipps, None, false).await;
    let (url, token) = split(&confirmation);
    let wrong = "f".repeat(token.len());
    assert_html_error(&get(&url).await, 400, "no token");
    assert_html_error(&get(&format!("{url}?token={wrong}")).await, 403, "a wrong token");
    let unknown = format!("{}/recurring/v3/landing/agr_nobody?token={token}", sandbox.base_url());
    assert_html_error(&get(&unknown).await, 404, "an unknown agreement");
    let fields = [("token", wrong.as_str()), ("decision", "approve"), ("phoneNumber", PHONE)];
    assert_html_error(&post(&sandbox, &url, &fields).await, 403, "a form with a wrong token");
    let fields = [("token", token.as_str()), ("decision", "approve"), ("phoneNumber", PHONE)];
    let evil = post_with(&url, &fields, &[("origin", "http://evil.example")]).await;
    assert_html_error(&evil, 403, "another origin");
    assert_eq!(agreement(&vipps, &id).await["status"], "PENDING", "nothing changed");

    sandbox.advance_clock(std::time::Duration::from_secs(11 * 60)).unwrap();
    let expired = get(&confirmation).await;
    assert_html_error(&expired, 409, "an expired agreement");
    assert!(expired.html.contains("EXPIRED"), "{}", expired.html);

    let (_, _, app_link) = draft(&vipps, None, true).await;
    assert!(app_link.starts_with("vipps://"), "{app_link}");
}
