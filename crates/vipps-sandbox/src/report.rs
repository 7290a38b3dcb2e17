//! Report API: the ledgers, and the entries of each ledger's `funds` and `fees` topics, by
//! ledger date and as a feed, built from the ePayment and Recurring captures and refunds made
//! in the sandbox; and the deprecated v1 transaction list.
//!
//! # Ledgers
//!
//! Each merchant serial number settles in one ledger, [`ledger_id`] (`9` and the MSN), that
//! settles for `api:<msn>`. The sandbox's own merchant always has one; any other merchant has
//! one once it has captured something. One credential set sees every ledger (as accounting
//! partner keys do): `GET /settlement/v1/ledgers` lists them all, `settlesForRecipientHandles`
//! filters them.
//!
//! # Entries and the fee model
//!
//! The sandbox's fee model is simple and fixed: each capture costs [`FEE_BASIS_POINTS`]
//! (1.75 %) of the captured amount, rounded down to a whole minor unit; refunds give no fee
//! back. In the order they happened, each capture of amount `a` and fee `f` gives
//!
//! - on `funds`: `capture` `+a`, then `fees-retained` `-f` (the fee is kept back from the
//!   funds at once, where the real service sums a period's fees into one entry);
//! - on `fees`: `capture-fee` `+f`, then `fees-retained` `-f` (the fee is paid);
//!
//! and each refund of amount `r` gives `refund` `-r` on `funds`. Amounts are in minor units;
//! `balanceBefore` and `balanceAfter` run over the topic's whole history, so that the funds
//! balance is always captured − refunded − fees. No payouts are made. Every entry carries the
//! payment's `reference` (a Recurring charge's id) and `pspReference` (the charge's
//! `transactionId`), the currency, `recipientHandle` `api:<msn>`, the
//! event's time and its ledger date (the UTC date of the sandbox clock).
//!
//! # Paging
//!
//! At most [`crate::SandboxBuilder::report_page_size`] entries (100 by default) or ledgers come
//! in one answer. The ledger list gives a `cursor` while there are more. A date report
//! (`.../dates/{ledgerDate}`) gives `hasMore: true` and a `cursor` while there are more; a date
//! after today is a 404 (not available yet), and today's report has `tryLater: true` (the date
//! is not closed). The feed always gives a `cursor`, from which the next call continues, and
//! `tryLater: true` once it has reached the end (then its items may be empty). A cursor is
//! opaque; one that does not belong to the ledger, topic and date of the call is a 400.
//!
//! Unknown ledgers are a 404. A Recurring charge reaches the ledger when the sandbox settles
//! it, which is when it is first read on or after its due date (see [`crate::recurring`]).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use chrono::NaiveDate;
use vipps_report::types::{
    BankAccount, GetLedgersResponse, GetReportByDateResponse, GetReportFeedResponse, Ledger,
    ListLedgerTransactionsResponse, Money, Organization, Transaction, TransactionEntryType,
};

use crate::extract::{Path, Query};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState, Shared};

/// The fee on each capture, in basis points of the captured amount (175 = 1.75 %).
pub const FEE_BASIS_POINTS: i64 = 175;

/// The fee the sandbox charges for capturing `amount` minor units.
pub fn fee(amount: i64) -> i64 {
    amount * FEE_BASIS_POINTS / 10_000
}

/// The ledger a merchant's payments settle in.
pub fn ledger_id(msn: &str) -> String {
    format!("9{msn}")
}

/// A ledger's topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Funds,
    Fees,
}

impl Topic {
    fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "funds" => Ok(Topic::Funds),
            "fees" => Ok(Topic::Fees),
            _ => Err(ApiError::invalid("topic", "must be funds or fees")),
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settlement/v1/ledgers", get(ledgers))
        .route("/report/v2/ledgers/{ledger}/{topic}/dates/{date}", get(by_date))
        .route("/report/v2/ledgers/{ledger}/{topic}/feed", get(feed))
        .route("/report/v1/ledgertransactions", get(transactions))
}

/// A capture or refund that reaches a ledger, from ePayment or Recurring.
#[derive(Debug, Clone)]
pub(crate) struct MoneyEvent {
    pub msn: String,
    /// The payment's reference, or the charge id.
    pub reference: String,
    pub psp_reference: String,
    pub currency: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its place in its payment's or charge's log, to keep that order among equal times.
    pub index: usize,
    /// A capture (`true`) or a refund.
    pub captured: bool,
    /// In minor units.
    pub value: i64,
}

/// Every capture and refund made in the sandbox, ePayment and Recurring.
fn money_events(state: &Shared) -> Vec<MoneyEvent> {
    let mut events = lock(&state.epayment).money_events();
    events.extend(lock(&state.recurring).money_events());
    events
}

/// The MSN of each ledger that exists, in ledger id order.
fn ledger_msns(state: &Shared) -> Vec<String> {
    let mut msns: Vec<String> = money_events(state).into_iter().map(|e| e.msn).collect();
    msns.push(state.config.credentials.merchant_serial_number.clone());
    msns.sort_by_key(|m| ledger_id(m));
    msns.dedup();
    msns
}

fn msn_of(state: &Shared, ledger: &str) -> ApiResult<String> {
    ledger_msns(state)
        .into_iter()
        .find(|m| ledger_id(m) == ledger)
        .ok_or_else(|| ApiError::not_found(format!("no ledger {ledger:?}")))
}

/// Every entry of a ledger's topic, oldest first, with its ledger date.
fn entries(state: &Shared, msn: &str, topic: Topic) -> Vec<(NaiveDate, Transaction)> {
    let mut events: Vec<MoneyEvent> = money_events(state).into_iter().filter(|e| e.msn == msn).collect();
    // The same order on every call: by time, then by payment, then as in the payment's log.
    events.sort_by(|a, b| (a.at, a.reference.as_str(), a.index).cmp(&(b.at, b.reference.as_str(), b.index)));
    let mut balance = 0i64;
    let mut out = Vec::new();
    for e in events {
        let (captured, value) = (e.captured, e.value);
        let parts: Vec<(TransactionEntryType, i64)> = match (topic, captured) {
            (Topic::Funds, true) => vec![(TransactionEntryType::Capture, value), (TransactionEntryType::FeesRetained, -fee(value))],
            (Topic::Funds, false) => vec![(TransactionEntryType::Refund, -value)],
            (Topic::Fees, true) => vec![(TransactionEntryType::CaptureFee, fee(value)), (TransactionEntryType::FeesRetained, -fee(value))],
            (Topic::Fees, false) => vec![],
        };
        let date = e.at.date_naive();
        for (kind, amount) in parts {
            let before = balance;
            balance += amount;
            out.push((
                date,
                Transaction {
                    amount: Some(Money(amount as f64)),
                    balance_after: Some(Money(balance as f64)),
                    balance_before: Some(Money(before as f64)),
                    currency: Some(e.currency.clone()),
                    entry_type: Some(kind),
                    ledger_date: Some(date.to_string()),
                    psp_reference: Some(e.psp_reference.clone()),
                    recipient_handle: Some(format!("api:{msn}")),
                    reference: Some(e.reference.clone()),
                    time: Some(e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                },
            ));
        }
    }
    out
}

fn encode_cursor(scope: &str, offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{scope}|{offset}"))
}

/// The offset a cursor holds, if it was made for `scope`; otherwise a 400.
fn decode_cursor(cursor: Option<&str>, scope: &str) -> ApiResult<usize> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else { return Ok(0) };
    let bad = || ApiError::invalid("cursor", "is not a cursor this endpoint gave for this ledger, topic and date");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (s, offset) = text.rsplit_once('|').ok_or_else(bad)?;
    if s != scope {
        return Err(bad());
    }
    offset.parse().map_err(|_| bad())
}

#[derive(Debug, serde::Deserialize)]
struct LedgersQuery {
    #[serde(rename = "settlesForRecipientHandles")]
    handles: Option<String>,
    cursor: Option<String>,
}

async fn ledgers(State(state): State<AppState>, Query(q): Query<LedgersQuery>) -> ApiResult<axum::Json<GetLedgersResponse>> {
    let scope = format!("ledgers:{}", q.handles.as_deref().unwrap_or(""));
    let offset = decode_cursor(q.cursor.as_deref(), &scope)?;
    let all: Vec<Ledger> = ledger_msns(&state)
        .into_iter()
        .filter(|m| q.handles.as_deref().is_none_or(|h| h == format!("api:{m}")))
        .map(|m| Ledger {
            ledger_id: Some(ledger_id(&m)),
            owner: Some(Organization { id: Some("987654321".into()), scheme: Some("business:NO:ORG".into()) }),
            payout_bank_account: Some(BankAccount { id: Some(format!("8601{m:0>7}")), scheme: Some("BBAN:NO".into()) }),
            settles_for_recipient_handles: vec![format!("api:{m}")],
        })
        .collect();
    let page = state.config.report_page_size;
    let items: Vec<Ledger> = all.iter().skip(offset).take(page).cloned().collect();
    let next = offset + items.len();
    let cursor = (next < all.len()).then(|| encode_cursor(&scope, next));
    Ok(axum::Json(GetLedgersResponse { cursor, items }))
}

#[derive(Debug, serde::Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

async fn by_date(
    State(state): State<AppState>,
    Path((ledger, topic, date)): Path<(String, String, String)>,
    Query(q): Query<CursorQuery>,
) -> ApiResult<axum::Json<GetReportByDateResponse>> {
    let topic_kind = Topic::parse(&topic)?;
    let day = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| ApiError::invalid("ledgerDate", "must be a date, YYYY-MM-DD"))?;
    let msn = msn_of(&state, &ledger)?;
    let today = state.today();
    if day > today {
        return Err(ApiError::not_found(format!("the report for {day} is not available yet")));
    }
    let scope = format!("date:{ledger}:{topic}:{day}");
    let offset = decode_cursor(q.cursor.as_deref(), &scope)?;
    let all: Vec<Transaction> = entries(&state, &msn, topic_kind).into_iter().filter(|(d, _)| *d == day).map(|(_, t)| t).collect();
    let items: Vec<Transaction> = all.iter().skip(offset).take(state.config.report_page_size).cloned().collect();
    let next = offset + items.len();
    let has_more = next < all.len();
    Ok(axum::Json(GetReportByDateResponse {
        cursor: has_more.then(|| encode_cursor(&scope, next)),
        has_more: Some(has_more),
        items,
        try_later: Some(day == today),
    }))
}

async fn feed(
    State(state): State<AppState>,
    Path((ledger, topic)): Path<(String, String)>,
    Query(q): Query<CursorQuery>,
) -> ApiResult<axum::Json<GetReportFeedResponse>> {
    let topic_kind = Topic::parse(&topic)?;
    let msn = msn_of(&state, &ledger)?;
    let scope = format!("feed:{ledger}:{topic}");
    let offset = decode_cursor(q.cursor.as_deref(), &scope)?;
    let all = entries(&state, &msn, topic_kind);
    let items: Vec<Transaction> = all.iter().skip(offset).take(state.config.report_page_size).map(|(_, t)| t.clone()).collect();
    let next = offset.min(all.len()) + items.len();
    Ok(axum::Json(GetReportFeedResponse {
        cursor: Some(encode_cursor(&scope, next)),
        has_more: None,
        items,
        try_later: Some(next >= all.len()),
    }))
}

#[derive(Debug, serde::Deserialize)]
struct TransactionsQuery {
    #[serde(rename = "ledgerId")]
    ledger: Option<String>,
    #[serde(rename = "ledgerDate")]
    date: Option<String>,
    #[serde(rename = "fromLedgerDate")]
    from: Option<String>,
    #[serde(rename = "toLedgerDate")]
    to: Option<String>,
    cursor: Option<String>,
}

fn date_param(name: &str, value: Option<&str>) -> ApiResult<Option<NaiveDate>> {
    value
        .map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| ApiError::invalid(name, "must be a date, YYYY-MM-DD")))
        .transpose()
}

/// The deprecated v1 list: the funds entries of one ledger, optionally of a date or a range
/// of dates, paged by cursor. (`inPayout` and `sincePayout` match nothing: the sandbox
/// makes no payouts.)
async fn transactions(
    State(state): State<AppState>,
    Query(q): Query<TransactionsQuery>,
) -> ApiResult<axum::Json<ListLedgerTransactionsResponse>> {
    let ledger = q.ledger.clone().ok_or_else(|| ApiError::invalid("ledgerId", "is required"))?;
    let date = date_param("ledgerDate", q.date.as_deref())?;
    let from = date_param("fromLedgerDate", q.from.as_deref())?;
    let to = date_param("toLedgerDate", q.to.as_deref())?;
    let msn = msn_of(&state, &ledger)?;
    let scope = format!("v1:{ledger}:{date:?}:{from:?}:{to:?}");
    let offset = decode_cursor(q.cursor.as_deref(), &scope)?;
    let all: Vec<Transaction> = entries(&state, &msn, Topic::Funds)
        .into_iter()
        .filter(|(d, _)| date.is_none_or(|x| *d == x) && from.is_none_or(|x| *d >= x) && to.is_none_or(|x| *d <= x))
        .map(|(_, t)| t)
        .collect();
    let items: Vec<Transaction> = all.iter().skip(offset).take(state.config.report_page_size).cloned().collect();
    let next = offset + items.len();
    Ok(axum::Json(ListLedgerTransactionsResponse { cursor: (next < all.len()).then(|| encode_cursor(&scope, next)), items }))
}

/// The funds balance of every ledger, by ledger id: captured − refunded − fees, for tests
/// (`report::balances(sandbox.state())`).
pub fn balances(state: &Shared) -> BTreeMap<String, i64> {
    ledger_msns(state)
        .into_iter()
        .map(|m| {
            let last = entries(state, &m, Topic::Funds).last().and_then(|(_, t)| t.balance_after.as_ref().map(|b| b.0 as i64));
            (ledger_id(&m), last.unwrap_or(0))
        })
        .collect()
}
