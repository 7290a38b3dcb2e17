//! The `## Coverage` table in the workspace README lists exactly the operations of the
//! generated `API` descriptors (every API of the manifest), and the endpoints the source documentation names are covered.

use std::collections::BTreeSet;
use vipps_core::OperationStatus;

type Row = (String, String, String, String, String, String);

// `apis()`: every API of `openapi/manifest.toml`, written by `cargo xtask codegen`.
#[path = "apis.rs"]
mod generated_apis;
use generated_apis::apis;

fn status(s: OperationStatus) -> &'static str {
    match s {
        OperationStatus::Current => "current",
        OperationStatus::Deprecated => "deprecated",
        OperationStatus::Proposal => "proposal",
    }
}

fn descriptor_rows() -> Vec<Row> {
    apis()
        .iter()
        .flat_map(|api| {
            api.operations.iter().map(move |o| {
                (
                    api.name.to_owned(),
                    o.http_method.to_owned(),
                    o.path.to_owned(),
                    o.operation_id.to_owned(),
                    o.method_name.to_owned(),
                    status(o.status).to_owned(),
                )
            })
        })
        .collect()
}

/// Rows of the table under `## Coverage` in README.md, backticks removed.
fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let section = readme.split("\n## Coverage").nth(1).expect("README.md has a `## Coverage` section");
    let section = section.split("\n## ").next().unwrap();
    let mut lines = section.lines().map(str::trim).filter(|l| l.starts_with('|'));
    let header: Vec<String> = cells(lines.next().expect("table header"));
    assert_eq!(header, ["API", "Method", "Path", "operationId", "crate method", "status"]);
    lines
        .skip(1) // |---|
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), 6, "row {l:?} does not have 6 cells");
            (c[0].clone(), c[1].clone(), c[2].clone(), c[3].clone(), c[4].clone(), c[5].clone())
        })
        .collect()
}

fn cells(line: &str) -> Vec<String> {
    line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect()
}

#[test]
fn readme_table_matches_descriptors_exactly() {
    let table = readme_rows();
    let ops = descriptor_rows();
    let table_set: BTreeSet<_> = table.iter().cloned().collect();
    let ops_set: BTreeSet<_> = ops.iter().cloned().collect();
    assert_eq!(table.len(), table_set.len(), "README table has duplicate rows");
    let missing: Vec<_> = ops_set.difference(&table_set).collect();
    let extra: Vec<_> = table_set.difference(&ops_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README coverage table is out of date.\nOperations missing from the table: {missing:#?}\nRows for no operation: {extra:#?}"
    );
}

#[test]
fn descriptor_tables_are_sorted_by_method_name() {
    for api in apis() {
        let names: Vec<&str> = api.operations.iter().map(|o| o.method_name).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{} is not sorted: {names:?}", api.name);
    }
}

#[test]
fn descriptors_have_no_duplicate_operations() {
    for api in apis() {
        let mut seen = BTreeSet::new();
        for o in api.operations {
            assert!(seen.insert((o.http_method, o.path)), "{}: {} {} twice", api.name, o.http_method, o.path);
            assert_eq!(o.http_method, o.http_method.to_uppercase(), "{}: {}", api.name, o.operation_id);
            assert!(o.path.starts_with('/'), "{}: {}", api.name, o.path);
        }
    }
}

/// Endpoints named (as `METHOD:/path` or as a full request) in the documentation captures in
/// `/work/shared/seeds`. The PSP (001) and Recurring (002) references name their operations by
/// title only, apart from the two Recurring/accesstoken paths listed.
const SEED_ENDPOINTS: &[(&str, &str)] = &[
    // 000 Management API guide
    ("GET", "/management/v1/merchants"),
    ("GET", "/management/v1/merchants/{scheme}/{id}"),
    ("GET", "/management/v1/merchants/{scheme}/{id}/contracts"),
    ("GET", "/management/v1/merchants/{scheme}/{id}/product-orders"),
    ("GET", "/management/v1/merchants/{scheme}/{id}/sales-units"),
    ("GET", "/management/v1/partners/price-packages"),
    ("GET", "/management/v1/partners/whoami"),
    ("GET", "/management/v1/product-orders"),
    ("GET", "/management/v1/product-orders/{prefilledProductOrderId}/details"),
    ("DELETE", "/management/v1/product-orders/{prefilledProductOrderId}"),
    ("GET", "/management/v1/sales-units"),
    ("GET", "/management/v1/sales-units/{msn}"),
    ("PATCH", "/management/v1/sales-units/{msn}"),
    ("GET", "/management/v1/api-quality/sales-units/{msn}"),
    ("GET", "/management/v2/product-orders"),
    ("GET", "/management/v2/product-orders/{productOrderId}/details"),
    // The guide writes the prefill endpoint as `/products/orders` and `/products-orders`;
    // the API (and spec) path is `/product-orders`.
    ("POST", "/management/v1/product-orders"),
    // 002 Recurring reference
    ("GET", "/recurring/v3/agreements/{agreementId}/charges/{chargeId}"),
    ("POST", "/accesstoken/get"),
    // 003 Order Management quick start
    ("POST", "/order-management/v1/images"),
    ("PUT", "/order-management/v2/{paymentType}/categories/{orderId}"),
    ("POST", "/order-management/v2/{paymentType}/receipts/{orderId}"),
    ("GET", "/order-management/v2/{paymentType}/{orderId}"),
];

#[test]
fn seed_endpoints_are_in_descriptors_and_table() {
    let ops: BTreeSet<(String, String)> = descriptor_rows().into_iter().map(|r| (r.1, r.2)).collect();
    let table: BTreeSet<(String, String)> = readme_rows().into_iter().map(|r| (r.1, r.2)).collect();
    for (m, p) in SEED_ENDPOINTS {
        let key = (m.to_string(), p.to_string());
        assert!(ops.contains(&key), "{m} {p} named in the docs has no generated operation");
        assert!(table.contains(&key), "{m} {p} named in the docs is missing from the README table");
    }
}

#[test]
fn every_api_has_operations_and_statuses_are_consistent() {
    for api in apis() {
        assert!(!api.operations.is_empty(), "{} has no operations", api.name);
    }
    // Recurring v2 is deprecated throughout, v3 is current.
    for o in vipps_recurring::API.operations {
        if o.path.starts_with("/recurring/v2/") {
            assert_eq!(o.status, OperationStatus::Deprecated, "{} {}", o.http_method, o.path);
        }
        if o.path.starts_with("/recurring/v3/") {
            assert_eq!(o.status, OperationStatus::Current, "{} {}", o.http_method, o.path);
        }
    }
}

/// ePayment and the Webhooks API authenticate with an access token and the subscription key;
/// ePayment's `Idempotency-Key`, declared on its path items, reaches the four operations
/// that change a payment, and its test-only force approve is generated too.
#[test]
fn epayment_and_webhooks_descriptors_hold_the_published_facts() {
    use vipps_core::Auth;
    for api in [&vipps_epayment::API, &vipps_webhooks::API] {
        assert_eq!(api.auth, Auth::BearerToken, "{}", api.name);
        assert!(api.headers.is_empty(), "{}", api.name);
        assert!(api.operations.iter().all(|o| o.auth == Auth::BearerToken), "{}", api.name);
    }
    let keyed: BTreeSet<&str> =
        vipps_epayment::API.operations.iter().filter(|o| o.idempotency_key).map(|o| o.operation_id).collect();
    assert_eq!(keyed, BTreeSet::from(["createPayment", "cancelPayment", "capturePayment", "refundPayment"]));
    let approve = vipps_epayment::API.operation("force_approve").expect("force approve is generated");
    assert_eq!((approve.http_method, approve.path), ("POST", "/epayment/v1/test/payments/{reference}/approve"));
    assert!(vipps_webhooks::API.operations.iter().all(|o| !o.idempotency_key));
}
