//! The Report API through the facade (`vipps.report()`, `vipps::report::{ledgers, entries}`)
//! against the sandbox: the ledger built from ePayment captures and refunds reconciles with
//! them (captured − refunded − fees = the funds balance), every operation answers, the
//! streams page by cursor and stop, an error in the middle of a stream is yielded, and a
//! server whose cursor would loop is refused instead of followed.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use serde_json::json;
use vipps::report::{entries, feed, ledgers, minor_units, FeedPage, Topic};
use vipps::Vipps;
use vipps_report::types::{GetReportFeedTopic, Transaction, TransactionEntryType as Kind};
use vipps_sandbox::report::{fee, ledger_id};
use vipps_sandbox::Sandbox;

fn key() -> vipps::IdempotencyKey {
    vipps::IdempotencyKey::generate()
}

async fn pay(vipps: &Vipps, reference: &str, value: i64) {
    let body: vipps_epayment::types::CreatePaymentRequest = serde_json::from_value(json!({
        "amount": {"currency": "NOK", "value": value},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": "4791234567"},
        "reference": reference,
        "returnUrl": "https://shop.example.com/return",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "Socks"
    }))
    .unwrap();
    let e = vipps.epayment();
    e.create_payment().idempotency_key(key()).body(body).send().await.expect("created");
    e.force_approve().reference(reference).body(vipps_epayment::types::ForceApprove::default()).send().await.expect("approved");
}

fn modification(value: i64) -> serde_json::Value {
    json!({"modificationAmount": {"currency": "NOK", "value": value}})
}

async fn capture(vipps: &Vipps, reference: &str, value: i64) {
    let body: vipps_epayment::types::CaptureModificationRequest = serde_json::from_value(modification(value)).unwrap();
    vipps.epayment().capture_payment().reference(reference).idempotency_key(key()).body(body).send().await.expect("captured");
}

async fn refund(vipps: &Vipps, reference: &str, value: i64) {
    let body: vipps_epayment::types::RefundModificationRequest = serde_json::from_value(modification(value)).unwrap();
    vipps.epayment().refund_payment().reference(reference).idempotency_key(key()).body(body).send().await.expect("refunded");
}

fn amount(t: &Transaction) -> i64 {
    minor_units(t.amount.as_ref().expect("an amount")).expect("whole minor units")
}

fn sum(items: &[Transaction], kind: Kind) -> i64 {
    items.iter().filter(|t| t.entry_type == Some(kind.clone())).map(amount).sum()
}

#[tokio::test]
async fn the_funds_ledger_reconciles_with_the_payments_captures_and_refunds() {
    let (sandbox, vipps) = support::start().await;
    let msn = sandbox.credentials().merchant_serial_number.clone();
    pay(&vipps, "order-1001", 10_000).await;
    capture(&vipps, "order-1001", 10_000).await;
    pay(&vipps, "order-1002", 25_000).await;
    capture(&vipps, "order-1002", 15_000).await;
    capture(&vipps, "order-1002", 5_000).await;
    refund(&vipps, "order-1002", 7_500).await;
    pay(&vipps, "order-1003", 4_990).await; // authorized, never captured: not in the ledger
    let (captured, refunded) = (10_000 + 15_000 + 5_000, 7_500);
    let fees = fee(10_000) + fee(15_000) + fee(5_000);
    assert_eq!(fees, 175 + 262 + 87, "1.75 %, rounded down");

    let report = vipps.report();
    let found: Vec<_> = ledgers(&report, Some(&format!("api:{msn}"))).try_collect().await.expect("the ledgers");
    assert_eq!(found.len(), 1);
    let ledger = found[0].ledger_id.clone().expect("an id");
    assert_eq!(ledger, ledger_id(&msn));

    // Today is not closed: the report says so, and has what happened so far.
    let today = sandbox.state().today().to_string();
    let open = report.get_report_by_date().ledger_id(&ledger).topic(Topic::Funds).ledger_date(today.as_str()).send().await.unwrap();
    assert_eq!(open.try_later, Some(true));
    // Tomorrow the date is closed and complete.
    sandbox.advance_clock(Duration::from_secs(86_400)).unwrap();
    let closed = report.get_report_by_date().ledger_id(&ledger).topic(Topic::Funds).ledger_date(today.as_str()).send().await.unwrap();
    assert_eq!((closed.try_later, closed.has_more), (Some(false), Some(false)));

    let funds: Vec<Transaction> = entries(&report, &ledger, Topic::Funds, &today).try_collect().await.expect("the entries");
    assert_eq!(funds.len(), 3 * 2 + 1, "a capture and its fee for each capture, one refund");
    assert_eq!(sum(&funds, Kind::Capture), captured);
    assert_eq!(sum(&funds, Kind::Refund), -refunded);
    assert_eq!(sum(&funds, Kind::FeesRetained), -fees);
    let net = captured - refunded - fees;
    assert_eq!(minor_units(funds.last().unwrap().balance_after.as_ref().unwrap()), Some(net));
    assert_eq!(vipps_sandbox::report::balances(sandbox.state())[&ledger], net);
    // Each entry moves the balance by its amount, and names its payment.
    for pair in funds.windows(2) {
        assert_eq!(pair[0].balance_after, pair[1].balance_before);
    }
    for t in &funds {
        let (before, after) = (minor_units(t.balance_before.as_ref().unwrap()).unwrap(), minor_units(t.balance_after.as_ref().unwrap()).unwrap());
        assert_eq!(after - before, amount(t));
        assert_eq!(t.ledger_date.as_deref(), Some(today.as_str()));
        assert_eq!(t.recipient_handle.as_deref(), Some(format!("api:{msn}").as_str()));
        assert_eq!(t.currency.as_deref(), Some("NOK"));
        assert!(matches!(t.reference.as_deref(), Some("order-1001") | Some("order-1002")), "{t:?}");
    }

    // The fees ledger details the same fees, and is paid off by them.
    let fee_entries: Vec<Transaction> = entries(&report, &ledger, Topic::Fees, &today).try_collect().await.unwrap();
    assert_eq!(sum(&fee_entries, Kind::CaptureFee), fees);
    assert_eq!(sum(&fee_entries, Kind::FeesRetained), -fees);

    // The deprecated v1 list holds the funds entries too.
    #[allow(deprecated)]
    let v1 = report.list_ledger_transactions().ledger_id(&ledger).ledger_date(today.as_str()).send().await.unwrap().into_inner();
    assert_eq!(v1.items, funds);
    // A day with nothing, and a day not reported yet.
    let yesterday = (sandbox.state().today() - chrono::Days::new(2)).to_string();
    let empty: Vec<Transaction> = entries(&report, &ledger, Topic::Funds, &yesterday).try_collect().await.unwrap();
    assert!(empty.is_empty());
    let later = (sandbox.state().today() + chrono::Days::new(1)).to_string();
    let err = entries(&report, &ledger, Topic::Funds, &later).try_collect::<Vec<_>>().await.expect_err("not yet");
    assert_eq!(err.status(), Some(404));
    let err = entries(&report, "9000", Topic::Funds, &today).try_collect::<Vec<_>>().await.expect_err("no such ledger");
    assert_eq!(err.status(), Some(404));
}

/// Five captures: ten funds entries, oldest first.
async fn five_captures(vipps: &Vipps) {
    for i in 0..5 {
        let reference = format!("order-20{i:02}");
        pay(vipps, &reference, 1_000 * (i + 1)).await;
        capture(vipps, &reference, 1_000 * (i + 1)).await;
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn the_entries_stream_pages_by_cursor_and_stops() {
    let sandbox = Sandbox::builder().report_page_size(3).start().await.unwrap();
    let vipps = support::client(&sandbox);
    five_captures(&vipps).await;
    let report = vipps.report();
    let ledger = ledger_id(&sandbox.credentials().merchant_serial_number);
    let today = sandbox.state().today().to_string();

    let calls = || sandbox.state().calls.load(Ordering::SeqCst);
    let before = calls();
    // The stream is Send: it runs on another task.
    let task = {
        let report = report.clone();
        let (ledger, today) = (ledger.clone(), today.clone());
        tokio::spawn(async move {
            let s = assert_send(entries(&report, &ledger, Topic::Funds, &today));
            s.try_collect::<Vec<_>>().await
        })
    };
    let all = task.await.unwrap().expect("every page");
    assert_eq!(all.len(), 10);
    assert_eq!(calls() - before, 4, "10 entries, 3 to a page: 4 requests, none after the last page");
    let captures: Vec<i64> = all.iter().filter(|t| t.entry_type == Some(Kind::Capture)).map(amount).collect();
    assert_eq!(captures, [1_000, 2_000, 3_000, 4_000, 5_000], "in order, none twice");

    // The ledger list pages too (one ledger per merchant that has captured).
    let other = vipps.merchant("654321").unwrap();
    pay_as(&other, "order-3000").await;
    let sandbox2_ledgers: Vec<_> = ledgers(&report, None).try_collect().await.unwrap();
    let ids: Vec<_> = sandbox2_ledgers.iter().filter_map(|l| l.ledger_id.clone()).collect();
    assert_eq!(ids, [ledger_id(&sandbox.credentials().merchant_serial_number), ledger_id("654321")]);
}

async fn pay_as(merchant: &vipps::Merchant, reference: &str) {
    let body: vipps_epayment::types::CreatePaymentRequest = serde_json::from_value(json!({
        "amount": {"currency": "NOK", "value": 1_000},
        "paymentMethod": {"type": "WALLET"},
        "reference": reference,
        "returnUrl": "https://shop.example.com/return",
        "userFlow": "WEB_REDIRECT"
    }))
    .unwrap();
    let e = merchant.epayment();
    e.create_payment().idempotency_key(key()).body(body).send().await.expect("created");
    e.force_approve().reference(reference).body(vipps_epayment::types::ForceApprove::default()).send().await.expect("approved");
    let body: vipps_epayment::types::CaptureModificationRequest = serde_json::from_value(modification(1_000)).unwrap();
    e.capture_payment().reference(reference).idempotency_key(key()).body(body).send().await.expect("captured");
}

#[tokio::test]
async fn an_error_in_the_middle_of_the_stream_is_yielded_and_ends_it() {
    let sandbox = Sandbox::builder().report_page_size(2).start().await.unwrap();
    let vipps = support::client(&sandbox);
    five_captures(&vipps).await;
    let report = vipps.report();
    let ledger = ledger_id(&sandbox.credentials().merchant_serial_number);
    let today = sandbox.state().today().to_string();
    let mut s = std::pin::pin!(entries(&report, &ledger, Topic::Funds, &today));
    assert!(s.next().await.unwrap().is_ok());
    assert!(s.next().await.unwrap().is_ok());
    // The next page fails (a 500 is not retried).
    sandbox.fail_next(1, 500);
    let err = s.next().await.expect("an item").expect_err("the failed page");
    assert_eq!(err.status(), Some(500));
    assert!(s.next().await.is_none(), "the stream ends after the error");
}

#[tokio::test]
async fn the_feed_gives_a_cursor_to_continue_from() {
    let sandbox = Sandbox::builder().report_page_size(4).start().await.unwrap();
    let vipps = support::client(&sandbox);
    five_captures(&vipps).await;
    let report = vipps.report();
    let ledger = ledger_id(&sandbox.credentials().merchant_serial_number);
    // Through the helper: pages of 4, 4 and 2, then it stops at the end of the feed.
    let pages: Vec<FeedPage> = feed(&report, &ledger, Topic::Funds, None).try_collect().await.expect("the feed");
    assert_eq!(pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(), [4, 4, 2]);
    let cursor = pages.last().unwrap().cursor.clone();
    // Nothing new yet: one empty page.
    let again: Vec<FeedPage> = feed(&report, &ledger, Topic::Funds, Some(cursor.clone())).try_collect().await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].items.is_empty());
    // At the end: nothing new until something happens, then the same cursor finds it.
    let page = report.get_report_feed().ledger_id(&ledger).topic(GetReportFeedTopic::Funds).cursor(cursor.clone()).send().await.unwrap().into_inner();
    assert!(page.items.is_empty() && page.try_later == Some(true));
    refund(&vipps, "order-2004", 500).await;
    let page = report.get_report_feed().ledger_id(&ledger).topic(GetReportFeedTopic::Funds).cursor(cursor).send().await.unwrap().into_inner();
    assert_eq!(page.items.len(), 1);
    assert_eq!(amount(&page.items[0]), -500);
    // A cursor from another endpoint is a 400.
    let err = report
        .get_report_by_date()
        .ledger_id(&ledger)
        .topic(Topic::Funds)
        .ledger_date(sandbox.state().today().to_string())
        .cursor(page.cursor.unwrap())
        .send()
        .await
        .expect_err("not its cursor");
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn a_bad_date_is_refused_before_sending() {
    let (sandbox, vipps) = support::start().await;
    let before = sandbox.state().calls.load(Ordering::SeqCst);
    let err = entries(&vipps.report(), "9123456", Topic::Funds, "3 May").try_collect::<Vec<_>>().await.expect_err("refused");
    assert!(matches!(err, vipps::Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(sandbox.state().calls.load(Ordering::SeqCst), before);
}

/// A Report API that answers `page` to every ledger-date request, behind a token endpoint.
async fn hostile(page: serde_json::Value) -> Vipps {
    hostile_pages(vec![page]).await
}

/// A server that answers every page request with the next of `pages`, round and round.
async fn hostile_pages(pages: Vec<serde_json::Value>) -> Vipps {
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/accesstoken/get",
            axum::routing::post(|| async { axum::Json(json!({"access_token": "t", "expires_in": "3600", "token_type": "Bearer"})) }),
        )
        .fallback(move || {
            let n = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let page = pages[n % pages.len()].clone();
            async move { axum::Json(page) }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Vipps::builder()
        .client_id("id")
        .client_secret("secret")
        .subscription_key("key")
        .merchant_serial_number("123456")
        .base_url(format!("http://{addr}"))
        .build()
        .unwrap()
}

async fn first_error(s: impl Stream<Item = Result<Transaction, vipps::Error>>) -> (usize, vipps::Error) {
    let mut s = std::pin::pin!(s);
    let mut n = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.next()).await.expect("the stream does not hang") {
            Some(Ok(_)) if n < 100 => n += 1,
            Some(Ok(_)) => panic!("100 items from a one-item page: the stream follows a looping cursor"),
            Some(Err(e)) => return (n, e),
            None => panic!("the stream ended without an error after {n} items"),
        }
    }
}

#[tokio::test]
async fn a_cursor_that_would_loop_is_an_error_not_a_hang() {
    let item = json!({"entryType": "capture", "amount": 100});
    // hasMore without a cursor.
    let vipps = hostile(json!({"hasMore": true, "items": [item]})).await;
    let (n, err) = first_error(entries(&vipps.report(), "1", Topic::Funds, "2026-01-01")).await;
    assert_eq!(n, 1);
    assert!(matches!(&err, vipps::Error::MalformedResponse { message, .. } if message.contains("no cursor")), "{err:?}");
    // The same cursor again and again: the second page would be the first.
    let vipps = hostile(json!({"hasMore": true, "cursor": "abc", "items": [item]})).await;
    let (n, err) = first_error(entries(&vipps.report(), "1", Topic::Funds, "2026-01-01")).await;
    assert_eq!(n, 2, "the first page and the one fetched with its cursor");
    assert!(matches!(&err, vipps::Error::MalformedResponse { message, .. } if message.contains("already followed")), "{err:?}");
    // Cursors that go round (a, b, a, ...): refused when one comes back, not followed forever.
    let vipps = hostile_pages(vec![
        json!({"hasMore": true, "cursor": "a", "items": [item]}),
        json!({"hasMore": true, "cursor": "b", "items": [item]}),
    ])
    .await;
    let (n, err) = first_error(entries(&vipps.report(), "1", Topic::Funds, "2026-01-01")).await;
    assert_eq!(n, 3, "pages at the start, a and b; the third gives a again");
    assert!(matches!(&err, vipps::Error::MalformedResponse { message, .. } if message.contains("already followed")), "{err:?}");
    // A feed that never reaches its end and gives back the same cursor: refused, not followed.
    let vipps = hostile(json!({"tryLater": false, "cursor": "abc", "items": [item]})).await;
    let report = vipps.report();
    let mut pages = std::pin::pin!(feed(&report, "1", Topic::Funds, None));
    assert!(pages.next().await.unwrap().is_ok(), "the first page");
    let err = tokio::time::timeout(Duration::from_secs(10), pages.next()).await.unwrap().unwrap().expect_err("a loop");
    assert!(matches!(&err, vipps::Error::MalformedResponse { .. }), "{err:?}");
    assert!(pages.next().await.is_none());
    // An amount that is not whole minor units is not taken for one.
    assert_eq!(minor_units(&vipps_report::types::Money(12.5)), None);
    assert_eq!(minor_units(&vipps_report::types::Money(f64::NAN)), None);
    assert_eq!(minor_units(&vipps_report::types::Money(-700.0)), Some(-700));
}

#[tokio::test]
async fn recurring_captures_and_refunds_reach_the_ledger_too() {
    use vipps_recurring::types::{
        CaptureRequestV3, CurrencyV3, DraftAgreementV3, ForceAcceptAgreementV3, InitialChargeV3,
        InitialChargeV3TransactionType, PricingRequest, PricingRequestType, RefundRequest, TimePeriod, TimePeriodUnit,
    };
    let (sandbox, vipps) = support::start().await;
    let recurring = vipps.recurring();
    let draft = DraftAgreementV3::builder()
        .product_name("Premium membership")
        .pricing(PricingRequest::builder().type_(PricingRequestType::Legacy).amount(29_900).currency(CurrencyV3::Nok))
        .interval(TimePeriod::builder().unit(TimePeriodUnit::Month).count(1u32))
        .initial_charge(
            InitialChargeV3::builder()
                .amount(29_900)
                .description("First month")
                .transaction_type(InitialChargeV3TransactionType::ReserveCapture),
        )
        .merchant_redirect_url("https://shop.example.com/return")
        .merchant_agreement_url("https://shop.example.com/subscriptions")
        .phone_number("4791234567");
    let created = recurring.draft_agreement().body(draft).send().await.unwrap().into_inner();
    let charge = created.charge_id.clone().expect("an initial charge").to_string();
    recurring
        .force_accept_agreement()
        .agreement_id(&created.agreement_id)
        .body(ForceAcceptAgreementV3 { phone_number: "4791234567".into() })
        .send()
        .await
        .unwrap();
    recurring
        .capture_charge()
        .agreement_id(&created.agreement_id)
        .charge_id(charge.as_str())
        .body(CaptureRequestV3::builder().amount(29_900).description("Delivered"))
        .send()
        .await
        .unwrap();
    recurring
        .refund_charge()
        .agreement_id(&created.agreement_id)
        .charge_id(charge.as_str())
        .body(RefundRequest::builder().amount(10_000).description("Goodwill"))
        .send()
        .await
        .unwrap();
    pay(&vipps, "order-4000", 5_000).await;
    capture(&vipps, "order-4000", 5_000).await;

    let ledger = ledger_id(&sandbox.credentials().merchant_serial_number);
    let today = sandbox.state().today().to_string();
    let funds: Vec<Transaction> = entries(&vipps.report(), &ledger, Topic::Funds, &today).try_collect().await.unwrap();
    let of_charge: Vec<(Kind, i64)> = funds
        .iter()
        .filter(|t| t.reference.as_deref() == Some(charge.as_str()))
        .map(|t| (t.entry_type.clone().unwrap(), amount(t)))
        .collect();
    assert_eq!(of_charge, [(Kind::Capture, 29_900), (Kind::FeesRetained, -fee(29_900)), (Kind::Refund, -10_000)]);
    let net = 29_900 - 10_000 - fee(29_900) + 5_000 - fee(5_000);
    assert_eq!(minor_units(funds.last().unwrap().balance_after.as_ref().unwrap()), Some(net));
}
