//! `return_sdk_errors` and `redact_secrets`: every generated `send` returns
//! `vipps_core::Error` through `vipps_core::hooks::send`, and a type holding a token does not
//! print it in `Debug`.

use std::path::Path;

use xtask::generate::generate_source;

fn generate(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    generate_source(&format!("xtask/fixtures/{name}"), &text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// The `send` methods of the generated code.
fn sends(code: &str) -> Vec<&str> {
    code.match_indices("pub async fn send(")
        .map(|(i, _)| {
            let end = i + code[i..].find("\n        }\n").unwrap();
            &code[i..end]
        })
        .collect()
}

#[test]
fn every_send_returns_the_sdk_error_through_the_runtime() {
    for fixture in ["token-and-form.yaml", "query-params.yaml", "mixed-errors.yaml", "undocumented-errors.yaml"] {
        let code = generate(fixture);
        let sends = sends(&code);
        assert!(!sends.is_empty(), "{fixture}");
        for send in sends {
            let squeezed: String = send.split_whitespace().collect();
            assert!(squeezed.contains(",::vipps_core::Error") && !squeezed.contains("Error<"), "{fixture}: the error type is the SDK's:\n{send}");
            assert_eq!(send.matches("::vipps_core::hooks::send(").count(), 1, "{fixture}:\n{send}");
            for gone in ["client.pre(", "client.exec(", "client.post(", "Error::ErrorResponse", "Error::UnexpectedResponse", "Error::InvalidRequest", "ResponseValue::from_response", "ResponseValue::empty", "ResponseValue::stream"] {
                assert!(!send.contains(gone), "{fixture}: `{gone}` is left:\n{send}");
            }
        }
        assert!(!code.contains("Error::Custom"), "no error is squeezed into a string");
    }
}

#[test]
fn responses_decode_and_errors_convert_through_the_runtime() {
    let code = generate("token-and-form.yaml");
    let sends = sends(&code);
    let token = sends.iter().find(|s| s.contains("form_urlencoded")).unwrap();
    let squeezed: String = token.split_whitespace().collect();
    assert!(squeezed.contains(".form_urlencoded(&body).map_err(::vipps_core::hooks::request_error)?"), "{token}");
    assert!(squeezed.contains("200u16=>::vipps_core::hooks::decode(response).await"), "{token}");
    let delete = sends.iter().find(|s| s.contains(".delete(url)")).unwrap();
    let squeezed: String = delete.split_whitespace().collect();
    assert!(squeezed.contains("_=>Err(::vipps_core::hooks::unexpected_response(response).await)"), "{delete}");
    assert!(squeezed.contains("204u16=>Ok(::vipps_core::hooks::empty(response))"), "{delete}");
}

#[test]
fn token_fields_are_redacted_in_debug() {
    let code = generate("token-and-form.yaml");
    let start = code.find("pub struct Token {").expect("the Token type");
    let derive = code[..start].rfind("#[derive(").unwrap();
    assert!(!code[derive..start].contains("Debug"), "Debug is not derived:\n{}", &code[derive..start]);
    assert!(code.contains("impl ::std::fmt::Debug for Token {"));
    assert!(code.contains(r#".field("access_token", &"[REDACTED]")"#));
    assert!(code.contains(r#".field("expires_in", &self.expires_in)"#));
}
