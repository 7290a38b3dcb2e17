//! Conveniences for the Recurring API: agreements and charges as streams, and waiting for
//! an agreement to reach a status.

use std::time::Duration;

use futures::stream::{self, Stream, TryStreamExt};
use vipps_core::Error;
use vipps_recurring::types::{AgreementResponseV3, AgreementStatus, ChargeResponseV3, ChargeStatus};
use vipps_recurring::Client;

/// Every agreement with `status`, fetched `page_size` at a time (1 to 2000) as the stream is read.
pub fn agreements(
    client: &Client,
    status: AgreementStatus,
    page_size: u32,
) -> impl Stream<Item = Result<AgreementResponseV3, Error>> + '_ {
    let page_size = page_size.clamp(1, 2000);
    stream::try_unfold(Some(1u32), move |page| {
        let status = status.clone();
        async move {
            let Some(page) = page else { return Ok(None) };
            let items = client
                .list_agreements()
                .status(status)
                .page_number(page)
                .page_size(page_size)
                .send()
                .await?
                .into_inner();
            // A short page is the last one.
            let next = (items.len() as u32 >= page_size).then_some(page + 1);
            Ok::<_, Error>(Some((stream::iter(items.into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

/// Every charge of an agreement (optionally only those with `status`), following the
/// `Continuation-Token` the API returns while there are more.
pub fn charges<'a>(
    client: &'a Client,
    agreement_id: &'a str,
    status: Option<ChargeStatus>,
) -> impl Stream<Item = Result<ChargeResponseV3, Error>> + 'a {
    stream::try_unfold(Some(None::<uuid::Uuid>), move |token| {
        let status = status.clone();
        async move {
            let Some(token) = token else { return Ok(None) };
            let mut request = client.list_charges().agreement_id(agreement_id);
            if let Some(status) = status {
                request = request.status(status);
            }
            if let Some(token) = token {
                request = request.continuation_token(token);
            }
            let response = request.send().await?;
            let next = match response.headers().get("continuation-token") {
                None => None,
                Some(v) => {
                    let parsed = v.to_str().ok().and_then(|s| uuid::Uuid::parse_str(s.trim()).ok());
                    let token = parsed.ok_or_else(|| Error::MalformedResponse {
                        status: Some(response.status().as_u16()),
                        path: None,
                        message: "the Continuation-Token header is not a UUID".into(),
                    })?;
                    Some(Some(token))
                }
            };
            Ok::<_, Error>(Some((stream::iter(response.into_inner().into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

/// Polls an agreement every `interval` until its status is `target`, and returns it; an
/// [`Error::Timeout`] with [`Limit::Wait`](vipps_core::Limit::Wait) when `deadline` passes first.
pub async fn wait_for_agreement_status(
    client: &Client,
    agreement_id: &str,
    target: AgreementStatus,
    deadline: Duration,
    interval: Duration,
) -> Result<AgreementResponseV3, Error> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let agreement = client.fetch_agreement().agreement_id(agreement_id).send().await?.into_inner();
        if agreement.status == Some(target.clone()) {
            return Ok(agreement);
        }
        if tokio::time::Instant::now() + interval > until {
            tracing::debug!(agreement_id, last_status = ?agreement.status, "the agreement did not reach {target} in time");
            return Err(Error::Timeout { limit: vipps_core::Limit::Wait, after: deadline });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Collects a stream of results into a vector, stopping at the first error. The future is
/// `Send` when the stream is (the streams of [`agreements`] and [`charges`] are), so it runs
/// inside `tokio::spawn` and axum handlers.
pub async fn collect<T>(s: impl Stream<Item = Result<T, Error>>) -> Result<Vec<T>, Error> {
    s.try_collect().await
}
