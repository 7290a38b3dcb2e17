//! Conveniences for the Report API: the ledgers and a ledger date's entries as streams over
//! the API's cursor, and amounts as whole minor units.
//!
//! The streams are `Send` (they run inside `tokio::spawn` and axum handlers), fetch one page
//! at a time as they are read, stop when the API says there is no more, and yield an error
//! where one happens (then end): a page that fails is never skipped.

use futures::stream::{self, Stream, TryStreamExt};
use vipps_core::Error;
use vipps_report::types::{GetReportByDateTopic, Ledger, Money, Transaction};
use vipps_report::Client;

/// A ledger's topic: `funds` (sales, refunds and the fees kept back) or `fees` (the fees in
/// detail).
pub type Topic = GetReportByDateTopic;

fn malformed(message: &str) -> Error {
    Error::MalformedResponse { status: Some(200), path: Some("cursor".into()), message: message.into() }
}

/// The next cursor of a page that says there is more, refusing one that would loop: absent,
/// empty or the same as the one just used.
fn next_cursor(cursor: Option<String>, used: Option<&str>) -> Result<String, Error> {
    match cursor {
        Some(c) if c.is_empty() => Err(malformed("the page says there is more but its cursor is empty")),
        Some(c) if Some(c.as_str()) == used => Err(malformed("the page gave back the cursor it was fetched with")),
        Some(c) => Ok(c),
        None => Err(malformed("the page says there is more but has no cursor")),
    }
}

/// Every ledger the keys give access to (only those settling for `recipient_handle`, such as
/// `api:123456`, when given), following the list's cursor until it is empty.
pub fn ledgers<'a>(client: &'a Client, recipient_handle: Option<&'a str>) -> impl Stream<Item = Result<Ledger, Error>> + Send + 'a {
    stream::try_unfold(Some(None::<String>), move |cursor| async move {
        let Some(cursor) = cursor else { return Ok(None) };
        let mut request = client.get_ledgers();
        if let Some(handle) = recipient_handle {
            request = request.settles_for_recipient_handles(handle);
        }
        if let Some(c) = &cursor {
            request = request.cursor(c.as_str());
        }
        let page = request.send().await?.into_inner();
        // The list's cursor is empty (or absent) when there are no more ledgers.
        let next = match page.cursor.filter(|c| !c.is_empty()) {
            None => None,
            more => Some(Some(next_cursor(more, cursor.as_deref())?)),
        };
        Ok::<_, Error>(Some((stream::iter(page.items.into_iter().map(Ok)), next)))
    })
    .try_flatten()
}

/// Every entry of one ledger date's `topic`, oldest first: the `.../dates/{ledgerDate}`
/// report, page after page while the API says `hasMore`. `ledger_date` is `YYYY-MM-DD`
/// (checked before anything is sent). A date the API has not made a report for yet is
/// [`Error::Api`] with status 404; a date that is not closed yet (the API's `tryLater`) gives
/// the entries so far; [`Client::get_report_by_date`] shows the flag.
pub fn entries<'a>(
    client: &'a Client,
    ledger_id: &'a str,
    topic: Topic,
    ledger_date: &'a str,
) -> impl Stream<Item = Result<Transaction, Error>> + Send + 'a {
    stream::try_unfold(Some(None::<String>), move |cursor| {
        let topic = topic.clone();
        async move {
            let Some(cursor) = cursor else { return Ok(None) };
            let mut request = client.get_report_by_date().ledger_id(ledger_id).topic(topic).ledger_date(ledger_date);
            if let Some(c) = &cursor {
                request = request.cursor(c.as_str());
            }
            let page = request.send().await?.into_inner();
            let next = if page.has_more == Some(true) { Some(Some(next_cursor(page.cursor, cursor.as_deref())?)) } else { None };
            Ok::<_, Error>(Some((stream::iter(page.items.into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

/// An amount as whole minor units (øre, cents); `None` for a value that is not a whole number
/// or does not fit in an `i64` (the spec types amounts as JSON numbers).
pub fn minor_units(amount: &Money) -> Option<i64> {
    let v = amount.0;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}
