//! Calls through the facade against raw reqwest, on one loopback mock server.
//!
//! `cargo bench -p vipps --bench throughput` gives criterion's time per call for each side.
//! For the throughput ratio, run `THROUGHPUT_PROFILE=ab:600 cargo bench -p vipps --bench
//! throughput`: it pairs the two sides round by round (see [`profile`]), where two criterion
//! groups measured seconds apart drift more than the difference being measured.
//!
//! Both sides put the same request on the wire (the facade's headers, including the `Accept`
//! the generated client sends and the SDK's `User-Agent`). wiremock keeps every matched
//! request in memory, and a server holding tens of thousands of them is slower (its heap
//! grows on every request): with one server for the whole run, the side measured second paid
//! for the requests of the first. So the server is reset before every sample, outside the
//! timed part, and both sides run against the same small server state.

use criterion::{criterion_group, Criterion};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn mock_server() -> MockServer {
    let server = MockServer::builder().disable_request_recording().start().await;
    mount(&server).await;
    server
}

/// Forgets every request the server has seen (and its mocks), and mounts the mocks anew.
async fn reset(server: &MockServer) {
    server.reset().await;
    mount(server).await;
}

async fn mount(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "t", "expires_in": "3600"})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/recurring/v3/agreements"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
}

fn facade(server: &MockServer) -> vipps::Vipps {
    vipps::Vipps::builder()
        .client_id("id")
        .client_secret("secret")
        .subscription_key("key")
        .merchant_serial_number("123456")
        .system("bench", "1")
        .base_url(server.uri())
        .build()
        .unwrap()
}

/// A plain reqwest client that sends the same `User-Agent` as the SDK's.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().user_agent(concat!("vipps-rust-sdk/", env!("CARGO_PKG_VERSION"))).build().unwrap()
}

async fn raw_call(raw: &reqwest::Client, url: &str) {
    let r = raw
        .get(url)
        .header("Accept", "application/json")
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
}

async fn facade_call(recurring: &vipps::recurring::Client) {
    let v = recurring.list_agreements().send().await.unwrap().into_inner();
    assert!(v.is_empty());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(mock_server());
    let raw = raw_client();
    let url = format!("{}/recurring/v3/agreements", server.uri());
    let vipps = facade(&server);
    let recurring = vipps.recurring();

    let (server, raw, url, recurring) = (&server, &raw, url.as_str(), &recurring);

    let mut group = c.benchmark_group("list_agreements");
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            reset(server).await;
            let started = std::time::Instant::now();
            for _ in 0..iters {
                raw_call(raw, url).await;
            }
            started.elapsed()
        })
    });
    group.bench_function("vipps_facade", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            reset(server).await;
            let started = std::time::Instant::now();
            for _ in 0..iters {
                facade_call(recurring).await;
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);

/// Without criterion, for profiling:
/// - `THROUGHPUT_PROFILE=raw:N` or `facade:N` runs N calls one way and exits: a fixed workload
///   for `valgrind --tool=callgrind` (the count for N=1100 minus the one for N=100, over 1000,
///   is what one call costs);
/// - `THROUGHPUT_PROFILE=ab:N` runs N rounds of 200 calls each way back to back (which side
///   goes first alternates), and prints the median of the rounds' throughput ratios. The two
///   criterion groups run one after the other, seconds apart, and on a shared 2-core machine
///   the same code measured that way drifts by up to 15% (two identical raw groups gave
///   ratios of 0.83 and 0.98). Paired rounds of identical sides give 0.995 to 1.003 here.
fn profile(spec: &str) {
    let (which, n) = spec.split_once(':').expect("THROUGHPUT_PROFILE=raw:N, facade:N or ab:N");
    let n: usize = n.parse().expect("a number");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(mock_server());
    let raw = raw_client();
    let url = format!("{}/recurring/v3/agreements", server.uri());
    let vipps = facade(&server);
    let recurring = vipps.recurring();
    let (raw, url, recurring) = (&raw, url.as_str(), &recurring);
    let call = move |raw_side: bool| async move {
        if raw_side {
            raw_call(raw, url).await
        } else {
            facade_call(recurring).await
        }
    };
    rt.block_on(async {
        // One call each way first, so that connections and the token exist before the counting.
        call(true).await;
        call(false).await;
        match which {
            "raw" | "facade" => {
                for _ in 0..n {
                    call(which == "raw").await;
                }
            }
            "ab" => {
                let (mut raw_times, mut facade_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
                for round in 0..n {
                    let mut pair = [0.0; 2];
                    for raw_side in [round % 2 == 0, round % 2 == 1] {
                        reset(&server).await;
                        let started = std::time::Instant::now();
                        for _ in 0..200 {
                            call(raw_side).await;
                        }
                        pair[usize::from(raw_side)] = started.elapsed().as_secs_f64() * 1e6 / 200.0;
                    }
                    let [facade, raw] = pair;
                    raw_times.push(raw);
                    facade_times.push(facade);
                    ratios.push(raw / facade);
                }
                let quartiles = |mut v: Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
                };
                let ((_, r, _), (_, f, _)) = (quartiles(raw_times), quartiles(facade_times));
                let (low, ratio, high) = quartiles(ratios);
                println!(
                    "raw {r:.1} µs, facade {f:.1} µs per call (medians of {n} rounds); \
                     throughput ratio facade/raw {ratio:.3} (median of the rounds' ratios; quartiles {low:.3}-{high:.3})"
                );
            }
            other => panic!("unknown mode {other}"),
        }
    });
}

fn main() {
    if let Ok(spec) = std::env::var("THROUGHPUT_PROFILE") {
        return profile(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
