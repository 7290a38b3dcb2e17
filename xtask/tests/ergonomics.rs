//! `xtask::ergonomics`: the setters of optional fields take the value and have a `clear_`
//! form, progenitor's setters keep the reason a value did not convert, and the generated
//! idempotency-key types convert from `vipps_core::IdempotencyKey`.

use std::path::Path;

use xtask::generate::generate_source;

fn generate() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ergonomics.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let code = generate_source("xtask/fixtures/ergonomics.yaml", &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    // Without whitespace, whatever prettyplease wrapped.
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn optional_fields_take_the_value_and_can_be_cleared() {
    let code = generate();
    assert!(code.contains("pubfnnote<T>(mutself,value:T)->SelfwhereT:::std::convert::TryInto<super::ThingNote>,"), "{code}");
    assert!(!code.contains("TryInto<::std::option::Option<super::ThingNote>>"), "typify's Option-taking setter is gone");
    assert!(code.contains(".map(::std::option::Option::Some).map_err(|e|{format!(\"errorconvertingsuppliedvaluefor{}:{e}\",\"note\""), "{code}");
    assert!(code.contains("pubfnclear_note(mutself)->Self{self.note=Ok(::std::option::Option::None);self}"), "{code}");
    // A required field keeps typify's setter, and gets no `clear_`.
    assert!(code.contains("pubfnname<T>(mutself,value:T)->SelfwhereT:::std::convert::TryInto<::std::string::String>,"), "{code}");
    assert!(!code.contains("clear_name"));
}

#[test]
fn parameter_conversions_keep_their_reason() {
    let code = generate();
    assert!(code.contains("format!(\"{}:{}\",\"conversionto`CreateThingIdempotencyKey`foridempotency_keyfailed\",e,)")
        || code.contains("format!(\"{}:{}\",\"conversionto`CreateThingIdempotencyKey`foridempotency_keyfailed\",e)"), "{code}");
    assert!(code.contains("<Vasstd::convert::TryInto<types::CreateThingIdempotencyKey,>>::Error:::std::fmt::Display")
        || code.contains("<Vasstd::convert::TryInto<types::CreateThingIdempotencyKey>>::Error:::std::fmt::Display"), "{code}");
    assert!(!code.contains("map_err(|_|"), "no conversion error is dropped");
}

#[test]
fn idempotency_key_types_convert_from_the_sdk_key() {
    let code = generate();
    for from in ["::vipps_core::IdempotencyKey", "&::vipps_core::IdempotencyKey"] {
        let imp = format!("impl::std::convert::TryFrom<{from}>forCreateThingIdempotencyKey");
        assert!(code.contains(&imp), "{imp} missing");
    }
    assert!(code.contains("value.as_str().parse()"), "the spec's own check decides");
}
