//! The Webhooks API v1 through the facade (`vipps.webhooks()`) against the sandbox: register
//! (a secret per registration), list and delete, per merchant, and bad registrations refused
//! with a 400 naming the field.

#[path = "support/mod.rs"]
mod support;

use vipps::Vipps;
use vipps_webhooks::types::{RegisterRequest, RegisterResponse};

fn request(url: &str, events: &[&str]) -> RegisterRequest {
    RegisterRequest { url: url.to_owned(), events: events.iter().map(|e| e.to_string()).collect() }
}

async fn register(vipps: &Vipps, url: &str, events: &[&str]) -> Result<RegisterResponse, vipps_core::Error> {
    Ok(vipps.webhooks().post_v1_webhooks().body(request(url, events)).send().await?.into_inner())
}

#[tokio::test]
async fn webhooks_are_registered_listed_and_deleted() {
    let (_sandbox, vipps) = support::start().await;
    assert!(vipps.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks.is_empty());

    let paid = register(
        &vipps,
        "https://shop.example.com/hooks/paid",
        &["epayments.payment.authorized.v1", "epayments.payment.captured.v1"],
    )
    .await
    .unwrap();
    let local = register(&vipps, "http://127.0.0.1:9/hooks", &["epayments.payment.refunded.v1"]).await.unwrap();
    assert_ne!(paid.id, local.id);
    assert_ne!(paid.secret, local.secret, "each registration has its own secret");
    assert!(paid.secret.len() >= 32, "a secret worth the name: {}", paid.secret);

    let listed = vipps.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, paid.id);
    assert_eq!(listed[0].url, "https://shop.example.com/hooks/paid");
    assert_eq!(listed[0].events, ["epayments.payment.authorized.v1", "epayments.payment.captured.v1"]);

    let deleted = vipps.webhooks().delete_v1_webhooks_by_id().id(paid.id).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let listed = vipps.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [local.id]);
    let again = vipps.webhooks().delete_v1_webhooks_by_id().id(paid.id).send().await.unwrap_err();
    assert_eq!(again.status(), Some(404));
}

#[tokio::test]
async fn registrations_belong_to_their_merchant() {
    let (_sandbox, vipps) = support::start().await;
    let mine = register(&vipps, "https://shop.example.com/hooks", &["epayments.payment.created.v1"]).await.unwrap();
    let other = vipps.merchant("654321").unwrap();
    assert!(other.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks.is_empty());
    let err = other.webhooks().delete_v1_webhooks_by_id().id(mine.id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let theirs = other
        .webhooks()
        .post_v1_webhooks()
        .body(request("https://other.example.com/hooks", &["epayments.payment.created.v1"]))
        .send()
        .await
        .unwrap()
        .into_inner();
    let listed = other.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [theirs.id]);
    let listed = vipps.webhooks().get_v1_webhooks().send().await.unwrap().into_inner().webhooks;
    assert_eq!(listed.iter().map(|w| w.id).collect::<Vec<_>>(), [mine.id]);
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_add_nothing() {
    let (sandbox, vipps) = support::start().await;
    let cases: [(&str, &[&str], &str); 3] = [
        ("not a url", &["epayments.payment.created.v1"], "url"),
        ("https://shop.example.com/hooks", &[], "events"),
        ("https://shop.example.com/hooks", &["epayments.payment.created.v1", "two words"], "events[1]"),
    ];
    for (url, events, field) in cases {
        let err = register(&vipps, url, events).await.unwrap_err();
        let named = err
            .problem()
            .and_then(|p| p.extra_details.as_ref())
            .and_then(|d| d[0]["name"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert_eq!((err.status(), named.as_str()), (Some(400), field), "{url} {events:?}: {err}");
    }
    assert!(sandbox.state().webhooks.lock().unwrap().registrations().is_empty());
    // A body that is not a registration at all.
    let (status, answer) = support::raw_send(
        support::raw_request(&sandbox, "POST", "/webhooks/v1/webhooks")
            .await
            .json(&serde_json::json!({"url": "https://x.example.com"})),
    )
    .await;
    assert_eq!((status, support::raw_field(&answer)), (400, "events"), "{answer}");
    // And an id that is not a UUID.
    let (status, answer) =
        support::raw_send(support::raw_request(&sandbox, "DELETE", "/webhooks/v1/webhooks/not-a-uuid").await).await;
    assert_eq!(status, 400, "{answer}");
}
