//! `vipps::webhooks` through the facade, and the axum extractor (the `axum` feature, which
//! the dev-dependencies turn on) over a loopback listener.

use std::time::SystemTime;

use vipps::webhooks::{self, Delivery, Event, EventName, Verifier};

const BODY: &str = r#"{"msn":"123456","reference":"order-12345678","pspReference":"7686f7788898767977","name":"CAPTURED","amount":{"currency":"NOK","value":1000},"timestamp":"2024-12-31T00:00:00Z","idempotencyKey":"k-1","success":true}"#;

#[test]
fn the_facade_re_exports_verification() {
    let signed = webhooks::sign(
        &"secret".into(),
        "POST",
        "/hooks",
        "shop.example",
        SystemTime::now(),
        BODY.as_bytes(),
    );
    let mut delivery = Delivery::new("POST", "/hooks", BODY.as_bytes()).header("host", "shop.example");
    for (name, value) in signed.iter() {
        delivery = delivery.header(name, value);
    }
    let event = Verifier::new("secret").verify_event(&delivery).unwrap();
    assert_eq!(event.name(), Some(EventName::PaymentCaptured));
}

mod axum_extractor {
    use super::*;
    use axum::{routing::post, Router};
    use vipps::webhooks::VerifiedWebhook;

    async fn receive(VerifiedWebhook(event): VerifiedWebhook) -> String {
        match event {
            Event::Payment(payment) => format!("{} {}", payment.reference, payment.name.as_str()),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_extractor_verifies_and_parses_over_loopback() {
        // Nested, so the handler's own URI lacks the prefix the sender signed.
        let app = Router::new()
            .nest("/hooks", Router::new().route("/vipps", post(receive)))
            .with_state(Verifier::new("secret"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let host = addr.to_string();
        let url = format!("http://{host}/hooks/vipps?shop=1");
        let client = reqwest::Client::new();
        let send = |path: &str, secret: &str, body: &'static str| {
            let signed = webhooks::sign(&secret.into(), "POST", path, &host, SystemTime::now(), body.as_bytes());
            let mut request = client.post(&url).body(body);
            for (name, value) in signed.iter() {
                request = request.header(name, value);
            }
            request.send()
        };

        let ok = send("/hooks/vipps?shop=1", "secret", BODY).await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), "order-12345678 CAPTURED");

        let wrong_secret = send("/hooks/vipps?shop=1", "other", BODY).await.unwrap();
        assert_eq!(wrong_secret.status(), 401);
        assert!(!wrong_secret.text().await.unwrap().contains("secret"));

        let wrong_path = send("/vipps?shop=1", "secret", BODY).await.unwrap();
        assert_eq!(wrong_path.status(), 401);

        let unsigned = client.post(&url).body(BODY).send().await.unwrap();
        assert_eq!(unsigned.status(), 401);

        let not_an_event = send("/hooks/vipps?shop=1", "secret", r#"{"pspReference":"1","name":"X"}"#)
            .await
            .unwrap();
        assert_eq!(not_an_event.status(), 400);
        server.abort();
    }
}
