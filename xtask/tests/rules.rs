//! Each normalization rule on a fixture spec that reproduces the failure it exists for:
//! without the rule, generation fails (or produces code that cannot compile); with every
//! rule, it succeeds and the result has the intended shape.

use std::path::Path;

use serde_json::Value;
use xtask::generate::{generate_source, prepare, prepare_except};
use xtask::normalize::RULES;

fn fixture(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    (format!("xtask/fixtures/{name}"), std::fs::read_to_string(path).unwrap())
}

fn normalized(name: &str) -> Value {
    let (file, text) = fixture(name);
    prepare(&file, &text).unwrap_or_else(|e| panic!("{e}")).json
}

#[test]
fn every_rule_has_a_reason_and_a_fixture_test() {
    let tests = include_str!("rules.rs");
    for rule in RULES {
        assert!(rule.reason.len() > 40, "{} needs a reason", rule.name);
        assert!(tests.contains(&format!("\"{}\"", rule.name)), "rule {} has no test here", rule.name);
    }
}

#[test]
fn drop_pseudo_paths() {
    let (file, text) = fixture("pseudo-path.yaml");
    let err = generate_source(&file, &text, &["drop-pseudo-paths"]).unwrap_err();
    assert_eq!(err.pointer, "/paths/[ makePaymentUrl ]", "{err}");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("pub fn list_things("));
    assert!(!code.contains("pub fn make_payment("));
    assert!(code.contains("pub struct CallbackBody"), "callback types are still generated");
}

#[test]
fn drop_callbacks() {
    let (file, text) = fixture("callbacks.yaml");
    let with = normalized("callbacks.yaml");
    assert!(with.pointer("/paths/~1v1~1payments/post/callbacks").is_none());
    let without = prepare_except(&file, &text, &["drop-callbacks"]).unwrap().json;
    assert!(without.pointer("/paths/~1v1~1payments/post/callbacks").is_some());
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("pub struct MakePaymentRequest") && code.contains("pub struct MakePaymentResponse"));
    assert!(!code.contains("fn make_payment_callback"));
}

#[test]
fn strip_managed_headers() {
    let (file, text) = fixture("managed-headers.yaml");
    let code = generate_source(&file, &text, &[]).unwrap();
    for gone in ["pub fn authorization<", "pub fn ocp_apim_subscription_key<", "pub fn merchant_serial_number<", "pub fn vipps_system_plugin_version<", "pub fn psp_id<"] {
        assert!(!code.contains(gone), "{gone} should not be a builder method");
    }
    assert!(code.contains("pub fn x_request_label<"), "other headers stay");
    let unstripped = generate_source(&file, &text, &["strip-managed-headers"]).unwrap();
    assert!(unstripped.contains("pub fn authorization<") && unstripped.contains("pub fn ocp_apim_subscription_key<"));
}

#[test]
fn optional_idempotency_key() {
    let doc = normalized("managed-headers.yaml");
    let params = doc.pointer("/paths/~1v1~1things/post/parameters").unwrap().as_array().unwrap();
    let key = params.iter().find(|p| p["name"] == "Idempotency-Key").unwrap();
    assert_eq!(key["required"], false);
    let (file, text) = fixture("managed-headers.yaml");
    let required = generate_source(&file, &text, &["optional-idempotency-key"]).unwrap();
    let optional = generate_source(&file, &text, &[]).unwrap();
    assert!(required.contains("idempotency_key: Err("), "a required key must be set by the caller");
    assert!(optional.contains("idempotency_key: Ok(None)"), "an optional key may be left to the runtime");
}

#[test]
fn json_media_types() {
    let (file, text) = fixture("media-types.yaml");
    let doc = normalized("media-types.yaml");
    let ok = doc.pointer("/paths/~1v1~1things/post/responses/200/content").unwrap();
    assert!(ok.get("application/json").is_some() && ok.as_object().unwrap().len() == 1);
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("ResponseValue<types::Thing>"), "the charset variant is typed");
    let untyped = generate_source(&file, &text, &["json-media-types", "one-request-media-type"]);
    assert!(untyped.is_err() || !untyped.unwrap().contains("ResponseValue<types::Thing>"));
}

#[test]
fn one_request_media_type() {
    let (file, text) = fixture("media-types.yaml");
    let err = generate_source(&file, &text, &["one-request-media-type"]).unwrap_err();
    assert!(err.pointer.ends_with("/requestBody/content"), "{err}");
    let doc = normalized("media-types.yaml");
    let body = doc.pointer("/paths/~1v1~1things/post/requestBody/content").unwrap().as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["application/json"]);
}

#[test]
fn errors_as_problem() {
    let (file, text) = fixture("mixed-errors.yaml");
    let err = generate_source(&file, &text, &["errors-as-problem"]).unwrap_err();
    assert!(err.message.contains("different bodies"), "{err}");
    let doc = normalized("mixed-errors.yaml");
    let responses = doc.pointer("/paths/~1v1~1things~1{id}/get/responses").unwrap().as_object().unwrap();
    assert_eq!(responses.keys().collect::<Vec<_>>(), ["200", "4XX", "5XX"]);
    assert!(responses["4XX"]["description"].as_str().unwrap().contains("404: missing"));
    let code = generate_source(&file, &text, &[]).unwrap();
    let squeezed: String = code.split_whitespace().collect();
    assert!(squeezed.contains("400u16..=499u16=>{Err(::vipps_core::hooks::error_response(response).await)"), "{code}");
}

#[test]
fn errors_as_problem_covers_undocumented_errors() {
    // Without the rule an operation documenting only a 200 has no error arms: its errors
    // reach `unexpected_response` (which reads them as problems too, since
    // `return_sdk_errors`). With it, they have the same 4XX/5XX arms as every other operation.
    let (file, text) = fixture("undocumented-errors.yaml");
    let bare = generate_source(&file, &text, &["errors-as-problem"]).unwrap();
    assert!(!bare.contains("400u16..=499u16"), "no error arms without the rule");
    let code = generate_source(&file, &text, &[]).unwrap();
    let squeezed: String = code.split_whitespace().collect();
    assert!(squeezed.contains("400u16..=499u16=>{Err(::vipps_core::hooks::error_response(response).await)"), "{code}");
    let doc = normalized("undocumented-errors.yaml");
    for op in ["/paths/~1v1~1images/post/responses", "/paths/~1v1~1things/get/responses"] {
        let responses = doc.pointer(op).unwrap().as_object().unwrap();
        assert!(responses.contains_key("4XX") && responses.contains_key("5XX"), "{op}: {:?}", responses.keys());
    }
    let things = doc.pointer("/paths/~1v1~1things/get/responses").unwrap();
    assert!(things["4XX"]["description"].as_str().unwrap().contains("400: a bad filter"));
    assert!(things["5XX"]["description"].as_str().unwrap().contains("not documented"));
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(!code.contains("Error<()>"), "every operation's errors are problems");
}

#[test]
fn fold_success_responses() {
    let (file, text) = fixture("mixed-success.yaml");
    let err = generate_source(&file, &text, &["fold-success-responses"]).unwrap_err();
    assert!(err.message.contains("success responses"), "{err}");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("204u16 =>"), "the bodiless status is still a success");
}

#[test]
fn string_enums() {
    let (file, text) = fixture("string-enums.json");
    let err = generate_source(&file, &text, &["string-enums"]).unwrap_err();
    assert!(err.message.contains("unexpected value type"), "{err}");
    let doc = normalized("string-enums.json");
    let props = doc.pointer("/components/schemas/Agreement/properties").unwrap();
    assert_eq!(props["countryCode"]["enum"], serde_json::json!(["NO"]));
    assert_eq!(props["interval"]["enum"], serde_json::json!(["YEAR", "MONTH", "WEEK"]), "no value is lost to the pattern");
    assert!(props["interval"].get("default").is_none(), "a default outside the enum is dropped");
    generate_source(&file, &text, &[]).unwrap();
}

#[test]
fn nullable_component_schemas() {
    let (file, text) = fixture("nullable-enum.yaml");
    let broken = generate_source(&file, &text, &["nullable-component-schemas"]).unwrap();
    assert!(broken.contains("pub struct CategoryEnum(pub ::std::option::Option<CategoryEnum>)"), "reproduces the clash");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert_eq!(code.matches("pub enum CategoryEnum").count(), 1);
    assert!(!code.contains("pub struct CategoryEnum"));
    assert!(code.contains("pub category: ::std::option::Option<CategoryEnum>"), "the field stays optional");
}
