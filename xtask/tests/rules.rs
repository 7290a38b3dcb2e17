//! Each normalization rule on a fixture spec that reproduces the failure it exists for:
//! without the rule, generation fails (or produces code that cannot compile); with every
//! rule, it succeeds and the result has the intended shape.

use std::path::Path;

use serde_json::Value;
use xtask::generate::{generate_source, prepare, prepare_except, prepare_with};
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

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn methods_of(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                out.push((method.clone(), path.clone(), id.to_owned()));
            }
        }
    }
    out
}

#[test]
fn synthesize_operation_ids() {
    let (file, text) = fixture("no-operation-id.yaml");
    let err = generate_source(&file, &text, &["synthesize-operation-ids"]).unwrap_err();
    assert!(err.message.contains("no operationId"), "{err}");
    let doc = normalized("no-operation-id.yaml");
    let ids = methods_of(&doc);
    let id = |m: &str, p: &str| ids.iter().find(|(mm, pp, _)| mm == m && pp == p).map(|t| t.2.as_str());
    assert_eq!(id("get", "/v1/hooks"), Some("getV1Webhooks"), "a declared id is kept");
    assert_eq!(id("get", "/v1/webhooks"), Some("getV1Webhooks2"), "a synthesized id never takes a declared one");
    assert_eq!(id("post", "/v1/webhooks"), Some("postV1Webhooks"));
    assert_eq!(id("delete", "/v1/webhooks/{id}"), Some("deleteV1WebhooksById"));
    let code = generate_source(&file, &text, &[]).unwrap();
    for method in ["pub fn get_v1_webhooks(", "pub fn get_v1_webhooks2(", "pub fn post_v1_webhooks(", "pub fn delete_v1_webhooks_by_id("] {
        assert!(code.contains(method), "{method}");
    }
    assert_eq!(
        xtask::normalize::synthesized_operation_id("get", "/qr/v1/merchant-redirect/{merchant_id}.png"),
        "getQrV1MerchantRedirectByMerchantIdPng"
    );
}

#[test]
fn bundle_refs() {
    let (file, text) = fixture("external-ref.yaml");
    let refs = xtask::bundle::DirRefs::beside(&fixture_path("external-ref.yaml"));
    let err = prepare_with(&file, &text, &refs, &["bundle-refs"]).err().expect("unbundled, the spec cannot be generated");
    assert!(err.message.contains("by reference"), "{err}");
    let err = prepare_with(&file, &text, &xtask::bundle::NoRefs, &[]).err().expect("the referenced document is needed");
    assert!(err.message.contains("paths/receipt.yaml"), "{err}");
    let empty = xtask::bundle::DirRefs { dir: fixture_path("no-such.refs") };
    let err = prepare_with(&file, &text, &empty, &[]).err().unwrap();
    assert!(err.message.contains("`cargo xtask fetch` downloads it"), "{err}");

    let prepared = prepare_with(&file, &text, &refs, &[]).unwrap_or_else(|e| panic!("{e}"));
    let doc = &prepared.json;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert_eq!(doc.pointer("/components/schemas/Payment/properties/receipt/$ref").unwrap(), "#/components/schemas/Receipt");
    assert_eq!(schemas["OrderLine"]["properties"]["note"]["type"], "string", "the root's own OrderLine stays");
    assert_eq!(schemas["Receipt"]["properties"]["orderLines"]["items"]["$ref"], "#/components/schemas/OrderLineOrderManagement");
    assert!(schemas["OrderLineOrderManagement"]["properties"].get("totalAmount").is_some());
    assert!(schemas.contains_key("BottomLine"));
    let receipt = doc.pointer("/paths/~1v1~1payments~1{reference}~1receipt/post").expect("the path item is resolved");
    assert_eq!(receipt.pointer("/requestBody/content/application~1json/schema/$ref").unwrap(), "#/components/schemas/Receipt");
    assert!(!doc.to_string().contains("swagger.yaml#"), "no external reference is left");
    assert!(!doc.to_string().contains("callbackPrefix"), "the callback's pseudo-path is dropped before bundling");

    let code = xtask::generate::run_progenitor(&file, &prepared.spec).unwrap().to_string();
    assert!(code.contains("pub struct Receipt") && code.contains("pub struct OrderLineOrderManagement"));
    assert!(code.contains("fn send_receipt"));
}

#[test]
fn fold_server_path() {
    let (file, text) = fixture("server-path.yaml");
    let unfolded = prepare_except(&file, &text, &["fold-server-path"]).unwrap();
    assert_eq!(unfolded.operations[0].path, "/merchant-redirect/{id}", "the failure: the /qr/v1 base is lost");
    let prepared = prepare(&file, &text).unwrap();
    assert_eq!(prepared.operations[0].path, "/qr/v1/merchant-redirect/{id}");
    assert_eq!(prepared.json["servers"][0]["url"], "https://{host}", "the folded path leaves the server URLs");
    assert_eq!(prepared.json["servers"][1]["url"], "https://apitest.vipps.no");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("\"{}/qr/v1/merchant-redirect/{}\""), "the request goes to the full path");
}

#[test]
fn hoist_path_parameters() {
    let (file, text) = fixture("path-parameters.yaml");
    let missed = prepare_except(&file, &text, &["hoist-path-parameters"]).unwrap();
    assert!(missed.operations.iter().all(|op| !op.idempotency_key), "the failure: the runtime does not see the key");
    let required = generate_source(&file, &text, &["hoist-path-parameters"]).unwrap();
    assert!(required.contains("idempotency_key: Err("), "the failure: optional-idempotency-key does not see it");

    let prepared = prepare(&file, &text).unwrap();
    assert_eq!(prepared.operations.len(), 2);
    assert!(prepared.operations.iter().all(|op| op.idempotency_key), "inline and shared definitions alike");
    let item = prepared.json.pointer("/paths/~1v1~1payments~1{reference}~1capture").unwrap();
    assert!(item.get("parameters").is_none());
    let params = item["post"]["parameters"].as_array().unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["reference", "Idempotency-Key", "x-label"], "Authorization stripped, the operation's X-Label kept");
    assert_eq!(params[1]["required"], false);
    assert_eq!(params[2]["description"], "from the operation");
    let refund = prepared.json.pointer("/paths/~1v1~1payments~1{reference}~1refund/post/parameters").unwrap();
    assert_eq!(refund.as_array().unwrap().len(), 2, "Merchant-Serial-Number stripped: {refund}");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert_eq!(code.matches("idempotency_key: Ok(None)").count(), 2, "both keys are optional");
    assert!(!code.contains("pub fn authorization<") && !code.contains("pub fn merchant_serial_number<"));
}

#[test]
fn keep_non_json_accept() {
    let (file, text) = fixture("non-json.yaml");
    let err = generate_source(&file, &text, &["keep-non-json-accept"]).unwrap_err();
    assert!(err.message.contains("text/plain"), "progenitor refuses a constrained text body: {err}");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert_eq!(code.matches("pub fn accept<").count(), 3, "the three operations offering other media types take Accept");
    let image = &code[code.find("impl<'a> GetQrImage<'a>").unwrap()..];
    let image = &image[..image.find("\n}\n").unwrap()];
    assert!(image.contains("ResponseValue<ByteStream>"), "an image is bytes");
    let target = &code[code.find("impl<'a> GetQrTarget<'a>").unwrap()..];
    assert!(target[..target.find("\n}\n").unwrap()].contains("ResponseValue<ByteStream>"), "text is bytes too");
    let list = &code[code.find("impl<'a> ListThings<'a>").unwrap()..];
    assert!(!list[..list.find("\n}\n").unwrap()].contains("pub fn accept<"), "a JSON-only Accept stays managed");

    // The failure without the rule, with the text body made acceptable by hand: Accept is gone.
    let plain = text.replace("maxLength: 200, ", "");
    let stripped = generate_source(&file, &plain, &["keep-non-json-accept"]).unwrap();
    assert_eq!(stripped.matches("pub fn accept<").count(), 0);
}

#[test]
fn anchor_character_class_patterns() {
    let (file, text) = fixture("ranges.yaml");
    let with = normalized("ranges.yaml");
    let pattern = |doc: &Value, p: &str| doc.pointer(&format!("/components/schemas/Charge/properties/{p}/pattern")).unwrap().clone();
    assert_eq!(pattern(&with, "reference"), "^[a-z0-9]+$");
    assert_eq!(pattern(&with, "code"), "^[A-Z]{2,3}$");
    assert_eq!(pattern(&with, "label"), "^[a-z]+$", "an anchored pattern is kept");
    assert_eq!(pattern(&with, "note"), "ab|cd", "another unanchored pattern keeps its search meaning");
    // Without the rule the generated check is the unanchored search, which "ABC def" passes.
    let without = generate_source(&file, &text, &["anchor-character-class-patterns"]).unwrap();
    assert!(without.contains(r#"Regex::new("[a-z0-9]")"#));
    let regex = regress::Regex::new("[a-z0-9]").unwrap();
    assert!(regex.find("ABC def").is_some(), "the unanchored pattern accepts it");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains(r#"Regex::new("^[a-z0-9]+$")"#));
    assert!(regress::Regex::new("^[a-z0-9]+$").unwrap().find("ABC def").is_none());
}

#[test]
fn range_notes() {
    let (file, text) = fixture("ranges.yaml");
    let with = normalized("ranges.yaml");
    let description = with.pointer("/components/schemas/Charge/properties/amount/description").unwrap();
    assert_eq!(description, "Amount in minor units.\n\nx-vipps-range: 100..=2000000");
    let retry = with.pointer("/components/schemas/Charge/properties/retryDays/description").unwrap();
    assert_eq!(retry, "x-vipps-range: 0..=14", "an exclusive maximum is narrowed by one");
    // Without the rule the amount is a plain integer that nothing checks.
    let without = generate_source(&file, &text, &["range-notes"]).unwrap();
    assert!(!without.contains("vipps_core::hooks::range"));
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains(r#"deserialize_with = "::vipps_core::hooks::range::deserialize::<_, _, { 100 }, { 2000000 }>""#), "{code}");
    assert!(code.contains(r#"serialize_with = "::vipps_core::hooks::range::serialize::<_, _, { 100 }, { 2000000 }>""#));
    assert!(code.contains(r#"default,"#) && code.contains("range::deserialize_option::<_, _, { 0 }, { 14 }>"), "an optional field");
    assert!(code.contains("///Amount in minor units.") && !code.contains("x-vipps-range"), "the note leaves the docs");
    // A required nullable field: typify's `Option::deserialize` (which keeps it required) is
    // replaced by the range check, without `default`.
    let tip = &code[code.find("pub struct Charge {").unwrap()..];
    let tip = &tip[..tip.find("pub tip_amount:").unwrap()];
    let tip = &tip[tip.rfind("pub ").unwrap()..];
    assert!(!tip.contains("Option::deserialize") && !tip.contains("default"), "{tip}");
    assert!(tip.contains("range::deserialize_option::<_, _, { 0 }, { i64::MAX }>"), "{tip}");
    assert!(tip.contains(r#"rename = "tipAmount""#), "other serde attributes stay: {tip}");
}

#[test]
fn unsigned_integers() {
    let (file, text) = fixture("unsigned.yaml");
    // Without the rule, a lower bound of one is typify's `NonZeroU32`, which `.amount(100)`
    // cannot be converted to, and a bound of zero still gives a signed type.
    let without = generate_source(&file, &text, &["unsigned-integers"]).unwrap();
    assert!(without.contains("pub amount: ::std::num::NonZeroU32"), "{without}");
    assert!(without.contains("pub captured: ::std::option::Option<i64>"));
    assert!(without.contains("pub refunded_amount: ::std::option::Option<i32>"));
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(!code.contains("NonZero"), "{code}");
    assert!(code.contains("pub amount: u32,") && code.contains("pub count: u64,"), "{code}");
    assert!(code.contains("pub captured: ::std::option::Option<u64>"));
    assert!(code.contains("pub refunded_amount: ::std::option::Option<u32>"), "money by its name: {code}");
    assert!(code.contains("pub price: ::std::option::Option<u64>"), "money by its name: {code}");
    // An `int32` made unsigned keeps the API's bound: no more than `i32::MAX`.
    assert!(code.contains("{ 2147483647 }>"), "{code}");
    assert!(code.contains("pub balance: i64,"), "an integer without a lower bound stays signed");
    // The dropped bound of one is still checked before sending.
    assert!(code.contains("range::serialize::<_, _, { 1 }, { 2000000 }>"), "{code}");
    assert!(code.contains("range::serialize::<_, _, { 1 }, { i64::MAX }>"), "{code}");
    assert!(code.contains("page_size: Result<Option<u32>, String>"), "a parameter too: {code}");
}

#[test]
fn dates_by_example() {
    let (file, text) = fixture("dates.yaml");
    let without = generate_source(&file, &text, &["dates-by-example"]).unwrap();
    assert!(without.contains("pub due: ::std::string::String,"), "{without}");
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("pub due: ::chrono::naive::NaiveDate,"), "{code}");
    assert!(code.contains("pub code: ::std::option::Option<::std::string::String>"), "not a date: month 13");
    assert!(!code.contains("pub week: ::std::option::Option<::chrono"), "a pattern says what the string is");
    assert!(code.contains("pub at: ::std::option::Option<::std::string::String>"), "a date-time example is not a date");
}

#[test]
fn plain_response_ids() {
    let (file, text) = fixture("response-ids.yaml");
    // Without the rule, the one agreement id is a `String` in one response and a newtype in
    // the other.
    let without = generate_source(&file, &text, &["plain-response-ids"]).unwrap();
    assert!(without.contains("pub id: AgreementId,") && without.contains("pub agreement_id: ::std::string::String,"));
    assert!(without.contains("pub charge_id: ::std::option::Option<DraftResponseChargeId>"));
    let code = generate_source(&file, &text, &[]).unwrap();
    assert!(code.contains("pub id: ::std::string::String,"), "{code}");
    assert!(code.contains("pub charge_id: ::std::option::Option<::std::string::String>"), "{code}");
    assert!(code.contains("pub uuid: ::std::option::Option<::uuid::Uuid>"), "a format stays: {code}");
    assert!(code.contains("pub name: ::std::option::Option<AgreementName>"), "not an id: {code}");
    // Ids in request bodies, also through another schema, keep their checks.
    assert!(code.contains("pub order_id: DraftOrderId,") && code.contains("Option<ChargeExternalId>"), "{code}");
}
