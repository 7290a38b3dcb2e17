//! The generator passes of `xtask::open_enums` on a fixture: enums a response holds take
//! unknown values (`Kind` is also a query parameter, `Shade` only in responses), an enum only
//! requests use (`SortOrder`) stays closed, and a digits-only string decodes from a number.

use std::path::Path;

use xtask::generate::generate_source;
use xtask::open_enums::digits_only;

fn item<'a>(code: &'a str, start: &str) -> &'a str {
    let at = code.find(start).unwrap_or_else(|| panic!("{start} not generated"));
    let rest = &code[at..];
    &rest[..rest.find("\n    }\n").unwrap()]
}

#[test]
fn response_enums_are_open_and_request_enums_closed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/open-enums.yaml");
    let code = generate_source("xtask/fixtures/open-enums.yaml", &std::fs::read_to_string(path).unwrap(), &[]).unwrap();
    let unknown = "#[serde(untagged, serialize_with = \"::vipps_core::hooks::refuse_unknown\")]";
    for open in ["pub enum Kind {", "pub enum Shade {"] {
        assert!(item(&code, open).contains(unknown) && item(&code, open).contains("Unknown(::std::string::String)"), "{open}");
    }
    assert!(!item(&code, "pub enum SortOrder {").contains("Unknown"), "a request-only enum stays closed");
    assert!(item(&code, "impl ::std::fmt::Display for Kind {").contains("Self::Unknown(ref value) => f.write_str(value)"));
    let derives = &code[..code.find("pub enum Kind {").unwrap()];
    assert!(!derives[derives.rfind("#[derive(").unwrap()..].contains("Copy"), "an open enum is not Copy");
    assert!(item(&code, "impl<'de> ::serde::Deserialize<'de> for Msn {").contains("::vipps_core::hooks::digit_string(deserializer)"));
    assert!(item(&code, "impl<'de> ::serde::Deserialize<'de> for Label {").contains("::std::string::String::deserialize(deserializer)"));
}

#[test]
fn digits_only_patterns() {
    for yes in ["^\\d{4,10}$", "^[0-9]+$", "^\\d{3}$", "^\\d{2,}$"] {
        assert!(digits_only(yes), "{yes}");
    }
    for no in ["\\d{4,10}", "^\\d{4,10}", "^[0-9a-z]+$", "^\\d{4}-\\d{2}$", "^\\d{,3}$", "^\\w+$"] {
        assert!(!digits_only(no), "{no}");
    }
}
