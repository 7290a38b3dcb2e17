//! The landing pages in a real browser: headless Chromium, driven over WebDriver (`fantoccini`)
//! through a `chromedriver` this test starts on a loopback port. For an ePayment payment
//! (approved, then rejected) and a Recurring agreement, the test opens the link the API
//! handed out, clicks a button of the page's form, and checks that the browser ends on the
//! merchant's return URL, that the sandbox applied the answer, and that the merchant's
//! registered webhook receiver got the event, verified with `vipps_core::webhooks::Verifier`.
//!
//! It needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; `CHROMIUM` and `CHROMEDRIVER` name others). Without them it fails
//! and says how to install them (`.ci/run` installs them). Everything stays on 127.0.0.1.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;
use vipps::Vipps;
use vipps_core::webhooks::{Event, Verifier};
use vipps_sandbox::Sandbox;

/// How long anything the browser does may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long chromedriver may take to start a Chromium session: a first start on a loaded
/// 2-core machine once took more than 30 s in a CI run.
const START_PATIENCE: Duration = Duration::from_secs(120);
/// How long one whole browser case may take.
const CASE_LIMIT: Duration = Duration::from_secs(300);

/// One browser at a time: the three cases would otherwise start three Chromiums at once.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A program from an environment variable or its Debian path; the test fails loudly without it.
fn program(variable: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    if !path.is_file() {
        panic!(
            "\n\nThe browser test needs {package}: {} was not found.\n\
             Install Chromium and its WebDriver with\n\n    sudo apt-get install chromium chromium-driver\n\n\
             (or run .ci/run, which installs them), or point {variable} at another binary.\n",
            path.display()
        );
    }
    path
}

/// A `chromedriver` on a loopback port, in a process group of its own, with a fresh Chromium
/// profile. Dropping it kills the group (the driver and every browser it started) and removes
/// the profile.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    async fn start() -> Driver {
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver (chromedriver)");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().unwrap().port()
        };
        let profile = std::env::temp_dir().join(format!("vipps-browser-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let mut command = Command::new(&chromedriver);
        command.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), profile };
        // Ready when /status answers.
        let http = vipps_core::reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(answer) = http.get(format!("{}/status", driver.url)).send().await {
                if answer.status().is_success() {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not answer on {} in time", driver.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new headless Chromium session.
    async fn browser(&self) -> Client {
        let chromium = program("CHROMIUM", "/usr/bin/chromium", "chromium");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let capabilities = json!({"goog:chromeOptions": {"binary": chromium, "args": args}});
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = fantoccini::ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        tokio::time::timeout(START_PATIENCE, builder.connect(&self.url))
            .await
            .expect("Chromium started in time")
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium ({}): {e}", chromium.display()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let _ = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{}", self.child.id())).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The merchant's site on loopback: the return URL the browser comes back to. It records the
/// paths and queries of the pages it was asked for.
async fn merchant_site() -> (String, Arc<Mutex<Vec<String>>>) {
    let visits = Arc::new(Mutex::new(Vec::new()));
    let seen = visits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            // The browser also asks for a favicon; only pages count.
            if uri.path() != "/favicon.ico" {
                seen.lock().unwrap().push(uri.to_string());
            }
            axum::response::Html("<!DOCTYPE html><title>Shop</title><h1 id=\"thanks\">Back at the shop</h1>")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, visits)
}

/// A webhook receiver on loopback: every delivery verified with the registration's secret and
/// read into the typed event; `events` gets each verified event's name.
struct Receiver {
    url: String,
    secret: Arc<Mutex<Option<String>>>,
    verified: Arc<Mutex<Vec<Event>>>,
    rejected: Arc<Mutex<Vec<String>>>,
    events: tokio::sync::mpsc::UnboundedReceiver<String>,
}

async fn receiver() -> Receiver {
    let secret: Arc<Mutex<Option<String>>> = Arc::default();
    let verified: Arc<Mutex<Vec<Event>>> = Arc::default();
    let rejected: Arc<Mutex<Vec<String>>> = Arc::default();
    let (notify, events) = tokio::sync::mpsc::unbounded_channel();
    let (s, v, r) = (secret.clone(), verified.clone(), rejected.clone());
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |request: axum::extract::Request| {
            let (s, v, r, notify) = (s.clone(), v.clone(), r.clone(), notify.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let request = http::Request::from_parts(parts, body);
                let verifier = Verifier::new(s.lock().unwrap().clone().expect("registered before any event"));
                match verifier.verify_http_event(&request) {
                    Ok(event) => {
                        let _ = notify.send(event.name().expect("a named event").as_str().to_owned());
                        v.lock().unwrap().push(event);
                        http::StatusCode::OK
                    }
                    Err(e) => {
                        r.lock().unwrap().push(e.to_string());
                        http::StatusCode::UNAUTHORIZED
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, secret, verified, rejected, events }
}

impl Receiver {
    /// Registers the receiver with the merchant for `events`.
    async fn register(&self, vipps: &Vipps, events: &[&str]) {
        let body = vipps_webhooks::types::RegisterRequest {
            url: self.url.clone(),
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        let registered = vipps.webhooks().register_webhook().body(body).send().await.unwrap().into_inner();
        *self.secret.lock().unwrap() = Some(registered.secret);
    }

    /// Waits for `count` verified deliveries and returns their event names, sorted; then checks
    /// that nothing else came and nothing failed verification.
    async fn expect(&mut self, count: usize) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..count {
            let name = tokio::time::timeout(PATIENCE, self.events.recv()).await.expect("a webhook delivery in time");
            names.push(name.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(self.events.try_recv().is_err(), "no other delivery");
        assert!(self.rejected.lock().unwrap().is_empty(), "every delivery verifies: {:?}", self.rejected);
        names.sort();
        names
    }
}

/// Waits until the browser's address starts with `prefix`, and returns it.
async fn wait_for_url(browser: &Client, prefix: &str) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let url = browser.current_url().await.expect("the browser answers").to_string();
        if url.starts_with(prefix) {
            return url;
        }
        if tokio::time::Instant::now() >= deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("the browser is on {url}, not on {prefix}...; the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("no #{id} on the page: {e}")).text().await.unwrap()
}

/// One browser case, run alone (one Chromium at a time) and within [`CASE_LIMIT`]: a stuck
/// chromedriver fails the test instead of hanging it.
async fn bounded<T>(case: impl std::future::Future<Output = T>) -> T {
    let _one = ONE_BROWSER.lock().await;
    tokio::time::timeout(CASE_LIMIT, case).await.expect("the browser case finished within its limit")
}

async fn payment_case(decision: &str, reference: &str) -> (vipps_epayment::types::State, Vec<String>, Vec<Event>) {
    bounded(payment_case_unbounded(decision, reference)).await
}

async fn payment_case_unbounded(decision: &str, reference: &str) -> (vipps_epayment::types::State, Vec<String>, Vec<Event>) {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::client(&sandbox);
    let (shop, visits) = merchant_site().await;
    let mut hooks = receiver().await;
    hooks.register(&vipps, &["epayments.payment.authorized.v1", "epayments.payment.aborted.v1"]).await;
    let return_url = format!("{shop}/return?order={reference}");
    let body: vipps_epayment::types::CreatePaymentRequest = serde_json::from_value(json!({
        "amount": {"currency": "NOK", "value": 24900},
        "paymentMethod": {"type": "WALLET"},
        "reference": reference,
        "returnUrl": return_url,
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "Rain jacket <size M>"
    }))
    .unwrap();
    let created = vipps.epayment().create_payment().body(body).send().await.unwrap().into_inner();
    let redirect = created.redirect_url.expect("a redirect URL");

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&redirect).await.expect("the landing page opens");
    assert_eq!(text(&browser, "amount").await, "249.00 NOK");
    assert_eq!(text(&browser, "description").await, "Rain jacket <size M>", "shown as text, not markup");
    browser.find(Locator::Id(decision)).await.expect("the button").click().await.expect("a click");
    let landed = wait_for_url(&browser, &format!("{shop}/return")).await;
    assert_eq!(landed, return_url);
    assert_eq!(text(&browser, "thanks").await, "Back at the shop");
    assert_eq!(visits.lock().unwrap().as_slice(), [format!("/return?order={reference}")]);
    browser.close().await.expect("the session ends");

    let state = vipps.epayment().get_payment().reference(reference).send().await.unwrap().into_inner().state;
    let names = hooks.expect(1).await;
    let events = hooks.verified.lock().unwrap().clone();
    (state, names, events)
}

#[tokio::test]
async fn approving_a_payment_in_chromium_authorizes_it_and_returns_to_the_shop() {
    let (state, names, events) = payment_case("approve", "browser-order-1").await;
    assert_eq!(state, vipps_epayment::types::State::Authorized);
    assert_eq!(names, ["epayments.payment.authorized.v1"]);
    let Event::Payment(event) = &events[0] else { panic!("an ePayment event: {events:?}") };
    assert_eq!((event.reference.as_str(), event.amount.value), ("browser-order-1", 24900));
}

#[tokio::test]
async fn rejecting_a_payment_in_chromium_aborts_it_and_returns_to_the_shop() {
    let (state, names, _) = payment_case("reject", "browser-order-2").await;
    assert_eq!(state, vipps_epayment::types::State::Aborted);
    assert_eq!(names, ["epayments.payment.aborted.v1"]);
}

#[tokio::test]
async fn accepting_an_agreement_in_chromium_activates_it_and_returns_to_the_shop() {
    bounded(agreement_case()).await;
}

async fn agreement_case() {
    let sandbox = Sandbox::start().await.unwrap();
    let vipps = support::client(&sandbox);
    let (shop, visits) = merchant_site().await;
    let mut hooks = receiver().await;
    hooks.register(&vipps, &["recurring.agreement-activated.v1", "recurring.charge-reserved.v1"]).await;
    let redirect = format!("{shop}/subscribed");
    let body: vipps_recurring::types::DraftAgreementV3 = serde_json::from_value(json!({
        "pricing": {"type": "LEGACY", "amount": 19900, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": redirect,
        "merchantAgreementUrl": "https://shop.example.com/agreements",
        "phoneNumber": "4791234567",
        "productName": "Coffee club",
        "initialCharge": {"amount": 9900, "description": "First bag", "transactionType": "RESERVE_CAPTURE"}
    }))
    .unwrap();
    let created = vipps.recurring().draft_agreement().body(body).send().await.unwrap().into_inner();
    let (agreement_id, charge_id) = (created.agreement_id, created.charge_id.expect("an initial charge").to_string());
    let confirmation = created.vipps_confirmation_url.expect("a confirmation URL");

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&confirmation).await.expect("the landing page opens");
    assert_eq!(text(&browser, "product").await, "Coffee club");
    assert_eq!(text(&browser, "price").await, "199.00 NOK every month");
    let phone = browser.find(Locator::Id("phone")).await.unwrap();
    assert_eq!(phone.prop("value").await.unwrap().as_deref(), Some("4791234567"));
    browser.find(Locator::Id("approve")).await.unwrap().click().await.unwrap();
    let landed = wait_for_url(&browser, &redirect).await;
    assert_eq!(landed, redirect);
    assert_eq!(visits.lock().unwrap().as_slice(), ["/subscribed"]);
    browser.close().await.expect("the session ends");

    let agreement = vipps.recurring().fetch_agreement().agreement_id(&agreement_id).send().await.unwrap();
    assert_eq!(agreement.into_inner().status, Some(vipps_recurring::types::AgreementStatus::Active));
    let charge = vipps.recurring().fetch_charge().agreement_id(&agreement_id).charge_id(&charge_id).send().await;
    assert_eq!(charge.unwrap().into_inner().status, vipps_recurring::types::ChargeStatus::Reserved);
    assert_eq!(hooks.expect(2).await, ["recurring.agreement-activated.v1", "recurring.charge-reserved.v1"]);
    let verified = hooks.verified.lock().unwrap().clone();
    assert!(
        verified.iter().any(|e| matches!(e, Event::Agreement(a) if a.agreement_id == agreement_id)),
        "{verified:?}"
    );
}

#[test]
fn a_missing_browser_fails_loudly_with_how_to_install_it() {
    let missing =
        std::panic::catch_unwind(|| program("VIPPS_TEST_NO_SUCH_VARIABLE", "/nonexistent/chromium", "chromium"));
    let message = missing.expect_err("a missing binary is a failure, never a pass");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("apt-get install chromium chromium-driver"), "{message}");
    assert!(message.contains(".ci/run"), "{message}");
}
