//! Requests per second that the sandbox serves to the facade on loopback, with the client and
//! the sandbox sharing one 2-worker runtime (the whole machine on a 2-core CI box).
//! `cargo bench -p vipps --bench sandbox`; criterion reports the rate as `thrpt` (elem/s,
//! one element per request).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use vipps::recurring_api::types::{CurrencyV3, DraftAgreementV3, PricingRequest, PricingRequestType};

const CONCURRENCY: usize = 32;

fn draft() -> vipps::recurring_api::types::builder::DraftAgreementV3 {
    DraftAgreementV3::builder()
        .product_name("Bench")
        .pricing(PricingRequest {
            type_: PricingRequestType::Legacy,
            amount: Some(10_000),
            currency: CurrencyV3::Nok,
            suggested_max_amount: None,
        })
        .merchant_redirect_url("https://example.com/r")
        .merchant_agreement_url(Some("https://example.com/a".try_into().unwrap()))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (sandbox, vipps, agreement_id) = rt.block_on(async {
        let sandbox = vipps_sandbox::Sandbox::start().await.unwrap();
        let creds = sandbox.credentials();
        let vipps = vipps::Vipps::builder()
            .client_id(&creds.client_id)
            .client_secret(&creds.client_secret)
            .subscription_key(&creds.subscription_key)
            .merchant_serial_number(&creds.merchant_serial_number)
            .base_url(sandbox.base_url())
            .build()
            .unwrap();
        let id = vipps.recurring().draft_agreement_v3().body(draft()).send().await.unwrap().into_inner().agreement_id;
        (sandbox, vipps, id)
    });
    let recurring = vipps.recurring();

    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(CONCURRENCY as u64));
    group.bench_function("fetch_agreement_v3", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| recurring.fetch_agreement_v3().agreement_id(&agreement_id).send());
            for r in join_all(calls).await {
                assert_eq!(r.unwrap().into_inner().id.as_str(), agreement_id);
            }
        })
    });
    group.bench_function("draft_agreement_v3", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| recurring.draft_agreement_v3().body(draft()).send());
            for r in join_all(calls).await {
                assert!(!r.unwrap().into_inner().agreement_id.is_empty());
            }
        })
    });
    group.finish();
    drop(sandbox);
}

criterion_group!(benches, bench);
criterion_main!(benches);
