//! `streamline_requests`: the generated `send` methods send no `api-version` header and add
//! query parameters through `vipps_core::hooks::query`, and keep the headers the spec declares.

use std::path::Path;

use xtask::generate::generate_source;

fn generate(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    generate_source(&format!("xtask/fixtures/{name}"), &text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// The body of the `send` method of the builder named `builder`.
fn send_of<'a>(code: &'a str, builder: &str) -> &'a str {
    let start = code.find(&format!("impl<'a> {builder}<'a>")).unwrap_or_else(|| panic!("no builder {builder}"));
    let send = start + code[start..].find("pub async fn send(").unwrap();
    let end = send + code[send..].find("\n        }\n").unwrap();
    &code[send..end]
}

#[test]
fn no_api_version_header_and_no_empty_header_map() {
    let code = generate("query-params.yaml");
    assert!(!code.contains("\"api-version\""), "progenitor's api-version header is taken out");
    let get = send_of(&code, "GetThing");
    assert!(!get.contains("header_map"), "with no header parameter there is no header map to merge:\n{get}");
    assert!(get.contains(".get(url)") && get.contains(".build()?"), "{get}");
}

#[test]
fn query_parameters_go_through_the_runtime_helper() {
    let code = generate("query-params.yaml");
    let list = send_of(&code, "ListThings");
    assert_eq!(list.matches("::vipps_core::hooks::query(").count(), 2, "{list}");
    assert!(list.contains("QueryParam::new(\"status\", &status)") && list.contains("QueryParam::new(\"pageSize\", &page_size)"));
    assert!(!list.contains(".query("), "no direct reqwest query calls are left:\n{list}");
}

#[test]
fn declared_header_parameters_stay() {
    let code = generate("managed-headers.yaml");
    let create = send_of(&code, "CreateThing");
    assert!(!create.contains("\"api-version\""));
    assert!(create.contains("HeaderMap::with_capacity(2usize)"), "Idempotency-Key and X-Request-Label:\n{create}");
    assert!(create.contains("\"Idempotency-Key\"") && create.contains("\"X-Request-Label\""));
    assert!(create.contains(".headers(header_map)"));
}

#[test]
fn an_api_version_header_the_spec_declares_stays() {
    let code = generate("declared-api-version.yaml");
    let list = send_of(&code, "ListThings");
    assert!(list.contains("HeaderMap::with_capacity(1usize)"), "only progenitor's own header goes:\n{list}");
    assert!(list.contains("header_map.append(\"api-version\"") && list.contains(".headers(header_map)"), "{list}");
    assert!(!list.contains("from_static(\"api-version\")"), "{list}");
}
