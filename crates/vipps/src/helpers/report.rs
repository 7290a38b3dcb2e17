//! Conveniences for the Report API: the ledgers, a ledger date's entries and a ledger's feed
//! as streams over the API's cursor, and amounts as whole minor units.
//!
//! The streams are `Send` (they run inside `tokio::spawn` and axum handlers), fetch one page
//! at a time as they are read, stop when the API says there is no more, and yield an error
//! where one happens (then end): a page that fails is never skipped. A page that says there is
//! more but gives no cursor, an empty one or the cursor it was fetched with (which would
//! fetch the same page forever) gives its items, then an [`Error::MalformedResponse`].

use std::collections::HashSet;
use futures::stream::{self, Stream, TryStreamExt};
use vipps_core::Error;
use vipps_report::types::{GetReportByDateTopic, GetReportFeedTopic, Ledger, Money, Transaction};
use vipps_report::Client;

/// A ledger's topic: `funds` (sales, refunds and the fees kept back) or `fees` (the fees in
/// detail).
pub type Topic = GetReportByDateTopic;

fn malformed(message: &str) -> Error {
    Error::MalformedResponse { status: Some(200), path: Some("cursor".into()), message: message.into() }
}

/// Where a paged stream stands.
enum Next {
    /// The first page is next.
    Start,
    /// The page at this cursor is next.
    Cursor(String),
    /// The last page was read.
    Done,
    /// The last page said there is more but gave no usable cursor: this error is next, after
    /// that page's items.
    Broken(Error),
}

impl Next {
    fn cursor(&self) -> Option<&str> {
        match self {
            Next::Cursor(c) => Some(c),
            _ => None,
        }
    }
}

/// What follows a page that says there is more, refusing a cursor that would loop: absent,
/// empty, or one this stream already followed (`seen`, which it joins).
fn after(cursor: Option<String>, seen: &mut HashSet<String>) -> Next {
    match cursor {
        Some(c) if c.is_empty() => Next::Broken(malformed("the page says there is more but its cursor is empty")),
        Some(c) if !seen.insert(c.clone()) => Next::Broken(malformed("the page gave a cursor this stream already followed")),
        Some(c) => Next::Cursor(c),
        None => Next::Broken(malformed("the page says there is more but has no cursor")),
    }
}

/// Every ledger the keys give access to (only those settling for `recipient_handle`, such as
/// `api:123456`, when given), following the list's cursor until it is empty.
pub fn ledgers<'a>(client: &'a Client, recipient_handle: Option<&'a str>) -> impl Stream<Item = Result<Ledger, Error>> + Send + 'a {
    stream::try_unfold((Next::Start, HashSet::new()), move |(next, mut seen)| async move {
        match next {
            Next::Done => return Ok(None),
            Next::Broken(e) => return Err(e),
            Next::Start | Next::Cursor(_) => {}
        }
        let mut request = client.get_ledgers();
        if let Some(handle) = recipient_handle {
            request = request.settles_for_recipient_handles(handle);
        }
        if let Some(c) = next.cursor() {
            request = request.cursor(c);
        }
        let page = request.send().await?.into_inner();
        // The list's cursor is empty (or absent) when there are no more ledgers.
        let following = match page.cursor.filter(|c| !c.is_empty()) {
            None => Next::Done,
            more => after(more, &mut seen),
        };
        Ok::<_, Error>(Some((stream::iter(page.items.into_iter().map(Ok)), (following, seen))))
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
    stream::try_unfold((Next::Start, HashSet::new()), move |(next, mut seen)| {
        async move {
            match next {
                Next::Done => return Ok(None),
                Next::Broken(e) => return Err(e),
                Next::Start | Next::Cursor(_) => {}
            }
            let mut request = client.get_report_by_date().ledger_id(ledger_id).topic(topic).ledger_date(ledger_date);
            if let Some(c) = next.cursor() {
                request = request.cursor(c);
            }
            let page = request.send().await?.into_inner();
            let following = if page.has_more == Some(true) { after(page.cursor, &mut seen) } else { Next::Done };
            Ok::<_, Error>(Some((stream::iter(page.items.into_iter().map(Ok)), (following, seen))))
        }
    })
    .try_flatten()
}

/// One page of a ledger's feed: its entries, and the cursor to continue from once they are
/// processed (store it, and pass it to [`feed`] next time).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// The entries, oldest first; may be empty at the end of the feed.
    pub items: Vec<Transaction>,
    /// Where the next page starts.
    pub cursor: String,
}

/// A ledger's feed (`.../{topic}/feed`) from `cursor` (the start when `None`), page by page,
/// until the API says it has reached the end for now (`tryLater`, or an empty page). The
/// feed never ends for good: call again later with the last page's cursor for what is new.
/// A page without a cursor, or one that is not the last and gives back the cursor it was
/// fetched with (which would loop), is an [`Error::MalformedResponse`] that ends the stream.
pub fn feed<'a>(
    client: &'a Client,
    ledger_id: &'a str,
    topic: Topic,
    cursor: Option<String>,
) -> impl Stream<Item = Result<FeedPage, Error>> + Send + 'a {
    let topic = match topic {
        GetReportByDateTopic::Funds => GetReportFeedTopic::Funds,
        GetReportByDateTopic::Fees => GetReportFeedTopic::Fees,
    };
    let seen: HashSet<String> = cursor.iter().cloned().collect();
    stream::try_unfold((Some(cursor), seen), move |(next, mut seen)| async move {
        let Some(cursor) = next else { return Ok(None) };
        let mut request = client.get_report_feed().ledger_id(ledger_id).topic(topic);
        if let Some(c) = &cursor {
            request = request.cursor(c.as_str());
        }
        let page = request.send().await?.into_inner();
        let at_end = page.try_later == Some(true) || page.items.is_empty();
        let next_cursor = match page.cursor.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => return Err(malformed("a feed page has no cursor")),
        };
        if !at_end && !seen.insert(next_cursor.clone()) {
            return Err(malformed("a feed page that is not the last gave a cursor this stream already followed"));
        }
        let following = (!at_end).then(|| Some(next_cursor.clone()));
        Ok::<_, Error>(Some((FeedPage { items: page.items, cursor: next_cursor }, (following, seen))))
    })
}

/// An amount as whole minor units (øre, cents); `None` for a value that is not a whole number
/// or does not fit in an `i64` (the spec types amounts as JSON numbers).
pub fn minor_units(amount: &Money) -> Option<i64> {
    let v = amount.0;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}
