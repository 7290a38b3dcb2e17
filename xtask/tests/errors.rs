//! Bad specs give an error naming the file and the JSON pointer, never a panic.

use xtask::generate::generate_source;

fn error_of(text: &str) -> xtask::SpecError {
    generate_source("openapi/broken.yaml", text, &[]).expect_err("must fail")
}

const HEAD: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n";

#[test]
fn not_yaml_or_json() {
    let e = error_of("openapi: [3.0.3\n  : :");
    assert_eq!(e.file, "openapi/broken.yaml");
    assert!(e.message.contains("not a YAML or JSON document"), "{e}");
    let e = error_of("- just\n- a list\n");
    assert!(e.message.contains("not an OpenAPI document"), "{e}");
}

#[test]
fn not_openapi_3_0() {
    let e = error_of("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n");
    assert_eq!(e.pointer, "/openapi");
    assert!(e.to_string().starts_with("openapi/broken.yaml#/openapi: OpenAPI 3.1.0 is not supported"));
    assert_eq!(error_of("swagger: '2.0'\npaths: {}\n").pointer, "/swagger");
    assert!(error_of("paths: {}\n").message.contains("no `openapi` field"));
}

#[test]
fn structural_errors_point_at_the_value() {
    let e = error_of(&format!("{HEAD}paths:\n  /x:\n    get:\n      operationId: x\n      responses: 5\n"));
    assert_eq!(e.pointer, "/paths/~1x/get/responses", "{e}");
}

#[test]
fn unsupported_constructs_point_at_the_construct() {
    let cookie = format!(
        "{HEAD}paths:\n  /v1/things:\n    get:\n      operationId: list\n      parameters:\n        - {{name: session, in: cookie, schema: {{type: string}}}}\n      responses:\n        '200': {{description: ok}}\n"
    );
    let e = error_of(&cookie);
    assert_eq!(e.pointer, "/paths/~1v1~1things/get/parameters/0");
    assert!(e.message.contains("cookie"));

    let no_id = format!("{HEAD}paths:\n  /v1/things:\n    get:\n      responses:\n        '200': {{description: ok}}\n");
    // The synthesize-operation-ids rule gives such an operation an id; the check stays as a guard.
    let e = generate_source("openapi/broken.yaml", &no_id, &["synthesize-operation-ids"]).expect_err("must fail");
    assert_eq!(e.pointer, "/paths/~1v1~1things/get");
    assert!(e.message.contains("operationId"));

    let optional_path = format!(
        "{HEAD}paths:\n  /v1/things/{{id}}:\n    get:\n      operationId: get\n      parameters:\n        - {{name: id, in: path, schema: {{type: string}}}}\n      responses:\n        '200': {{description: ok}}\n"
    );
    assert!(error_of(&optional_path).message.contains("must be required"));

    let xml = format!(
        "{HEAD}paths:\n  /v1/things:\n    post:\n      operationId: create\n      requestBody: {{content: {{application/xml: {{schema: {{type: object}}}}}}}}\n      responses:\n        '200': {{description: ok}}\n"
    );
    let e = error_of(&xml);
    assert_eq!(e.pointer, "/paths/~1v1~1things/post/requestBody/content/application~1xml");

    let clash = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      operationId: getThing\n      responses: {{'200': {{description: ok}}}}\n  /b:\n    get:\n      operationId: get_thing\n      responses: {{'200': {{description: ok}}}}\n"
    );
    assert!(error_of(&clash).message.contains("same method name"));
}
