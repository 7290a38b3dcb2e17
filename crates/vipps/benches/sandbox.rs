//! Requests per second that the sandbox serves to the facade on loopback, with the client and
//! the sandbox sharing one 2-worker runtime (the whole machine on a 2-core CI box).
//! `cargo bench -p vipps --bench sandbox`; criterion reports the rate as `thrpt` (elem/s,
//! one element per request).
//!
//! Runs: `fetch_agreement`; `draft_agreement` (the runtime's own key per call);
//! `draft_agreement_keyed` (a fresh caller-chosen `Idempotency-Key` per call, so every call
//! stores an answer); `draft_agreement_replayed` (the same 32 keys again: every call is a
//! replay); and, with 100,000 more live tokens in the sandbox, `fetch_agreement_100k_tokens`
//! and `issue_token_100k_tokens` (`POST /accesstoken/get`). Before them it prints the process's
//! resident memory (`VmRSS`) before and after 100,000 keyed drafts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use vipps::recurring::types::{CurrencyV3, DraftAgreementV3, PricingRequest, PricingRequestType};

const CONCURRENCY: usize = 32;

/// Keyed drafts before the memory is read.
const KEYED_FOR_MEMORY: usize = 100_000;

/// Live tokens added for the token runs.
const LIVE_TOKENS: usize = 100_000;

/// The process's resident set size in MB, from `/proc/self/status` (0 where there is none).
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// A fresh idempotency key.
fn next_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn draft() -> vipps::recurring::types::builder::DraftAgreementV3 {
    DraftAgreementV3::builder()
        .product_name("Bench")
        .pricing(PricingRequest {
            type_: PricingRequestType::Legacy,
            amount: Some(10_000),
            currency: CurrencyV3::Nok,
            suggested_max_amount: None,
        })
        .merchant_redirect_url("https://example.com/r")
        .merchant_agreement_url("https://example.com/a")
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
        let id = vipps.recurring().draft_agreement().body(draft()).send().await.unwrap().into_inner().agreement_id;
        (sandbox, vipps, id)
    });
    let recurring = vipps.recurring();

    // Memory after 100,000 keyed operations, each storing an idempotent answer.
    let before = rss_mb();
    rt.block_on(async {
        for _ in 0..KEYED_FOR_MEMORY / CONCURRENCY {
            let calls = (0..CONCURRENCY)
                .map(|_| recurring.draft_agreement().idempotency_key(next_key()).body(draft()).send());
            for r in join_all(calls).await {
                r.unwrap();
            }
        }
    });
    let after = rss_mb();
    let (answers, bytes) = {
        let store = sandbox.state().idempotency.lock().unwrap();
        (store.len(), store.bytes())
    };
    println!(
        "memory: VmRSS {before:.1} MB before and {after:.1} MB after {} keyed drafts; {answers} idempotent answers kept ({:.1} MB), {} agreements",
        KEYED_FOR_MEMORY / CONCURRENCY * CONCURRENCY,
        bytes as f64 / 1e6,
        sandbox.state().recurring.lock().unwrap().agreement_count(),
    );

    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(CONCURRENCY as u64));
    group.bench_function("fetch_agreement", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| recurring.fetch_agreement().agreement_id(&agreement_id).send());
            for r in join_all(calls).await {
                assert_eq!(r.unwrap().into_inner().id.as_str(), agreement_id);
            }
        })
    });
    group.bench_function("draft_agreement", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| recurring.draft_agreement().body(draft()).send());
            for r in join_all(calls).await {
                assert!(!r.unwrap().into_inner().agreement_id.is_empty());
            }
        })
    });
    group.bench_function("draft_agreement_keyed", |b| {
        b.to_async(&rt).iter(|| async {
            let calls =
                (0..CONCURRENCY).map(|_| recurring.draft_agreement().idempotency_key(next_key()).body(draft()).send());
            for r in join_all(calls).await {
                assert!(!r.unwrap().into_inner().agreement_id.is_empty());
            }
        })
    });
    let replayed: Vec<String> = (0..CONCURRENCY).map(|i| format!("replayed-{i}")).collect();
    group.bench_function("draft_agreement_replayed", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = replayed.iter().map(|k| recurring.draft_agreement().idempotency_key(k.as_str()).body(draft()).send());
            for r in join_all(calls).await {
                assert!(!r.unwrap().into_inner().agreement_id.is_empty());
            }
        })
    });

    // 100,000 more live tokens: checking and issuing must not slow down.
    let state = sandbox.state();
    for _ in 0..LIVE_TOKENS {
        state.issue_token(Duration::from_secs(3600), vipps_sandbox::state::TokenKind::AccessToken);
    }
    println!("tokens: {} live", state.tokens.lock().unwrap().len());
    group.bench_function("fetch_agreement_100k_tokens", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| recurring.fetch_agreement().agreement_id(&agreement_id).send());
            for r in join_all(calls).await {
                assert_eq!(r.unwrap().into_inner().id.as_str(), agreement_id);
            }
        })
    });
    let http = reqwest::Client::new();
    let token_url = format!("{}/accesstoken/get", sandbox.base_url());
    let creds = sandbox.credentials().clone();
    group.bench_function("issue_token_100k_tokens", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..CONCURRENCY).map(|_| {
                http.post(&token_url)
                    .header("client_id", &creds.client_id)
                    .header("client_secret", &creds.client_secret)
                    .header("Ocp-Apim-Subscription-Key", &creds.subscription_key)
                    .send()
            });
            for r in join_all(calls).await {
                assert_eq!(r.unwrap().status(), 200);
            }
        })
    });
    group.finish();
    drop(sandbox);
}

criterion_group!(benches, bench);
criterion_main!(benches);
