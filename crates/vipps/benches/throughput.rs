//! Calls through the facade against raw reqwest, on the same loopback mock server.
//! `cargo bench -p vipps --bench throughput`; the ratio of the two times is the overhead.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/accesstoken/get"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "t", "expires_in": "3600"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/recurring/v3/agreements"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        server
    });
    let vipps = vipps::Vipps::builder()
        .client_id("id")
        .client_secret("secret")
        .subscription_key("key")
        .merchant_serial_number("123456")
        .system("bench", "1")
        .base_url(server.uri())
        .build()
        .unwrap();
    let recurring = vipps.recurring();
    let raw = reqwest::Client::new();
    let url = format!("{}/recurring/v3/agreements", server.uri());

    let mut group = c.benchmark_group("list_agreements_v3");
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let r = raw
                .get(&url)
                .bearer_auth("t")
                .header("Ocp-Apim-Subscription-Key", "key")
                .header("Merchant-Serial-Number", "123456")
                .header("Vipps-System-Name", "bench")
                .header("Vipps-System-Version", "1")
                .send()
                .await
                .unwrap();
            let v: Vec<serde_json::Value> = r.json().await.unwrap();
            assert!(v.is_empty());
        })
    });
    group.bench_function("vipps_facade", |b| {
        b.to_async(&rt).iter(|| async {
            let v = recurring.list_agreements_v3().send().await.unwrap().into_inner();
            assert!(v.is_empty());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
