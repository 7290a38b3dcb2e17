//! A subscriber that takes events but no spans still gets the call's closing event. Its own
//! test binary, because it installs a global subscriber.

mod support;

use serde_json::json;
use support::*;
use tracing_subscriber::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn the_closing_event_reaches_a_subscriber_that_takes_no_spans() {
    let buffer = TraceBuffer::default();
    let writer = buffer.clone();
    let events_only = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| meta.is_event()));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(events_only)).expect("the only subscriber");

    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    client(&server).recurring().list_agreements().send().await.unwrap();

    let traced = buffer.text();
    assert!(!traced.contains("vipps.call{"), "the span itself is filtered out: {traced}");
    assert!(traced.contains("call finished status=200"), "the closing event is there: {traced}");
}
