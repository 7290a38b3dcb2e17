//! The per-API facts of `openapi/manifest.toml`: read, checked, and emitted into the `API`
//! descriptor from which vipps-core sets the headers.

use std::path::Path;

use xtask::generate::generate_source_for;
use xtask::manifest::Manifest;

const ENTRY: &str = "[[api]]\nname = \"x\"\nspec = \"x.yaml\"\ncrate = \"vipps-x\"\ndescription = \"d\"\npublished = \"p\"\n";

fn parse(extra: &str) -> Result<Manifest, String> {
    Manifest::parse(Path::new("manifest.toml"), &format!("{ENTRY}{extra}"))
}

#[test]
fn facts_have_defaults_and_are_checked() {
    let m = parse("").unwrap();
    let api = &m.apis[0];
    assert_eq!(api.auth, "bearer-token");
    assert!(api.headers.is_empty() && api.auth_operations.is_empty());
    assert_eq!(api.environments, ["test", "production"]);
    let m = parse("auth = \"basic\"\nauth-operations = { getThing = \"client-headers\" }\nheaders = [\"Psp-Id\"]\nenvironments = [\"production\"]\n").unwrap();
    let api = &m.apis[0];
    assert_eq!((api.auth.as_str(), api.auth_operations["getThing"].as_str()), ("basic", "client-headers"));
    assert_eq!((api.headers.as_slice(), api.environments.as_slice()), (&["Psp-Id".to_string()][..], &["production".to_string()][..]));
    for (bad, says) in [
        ("auth = \"oauth\"\n", "auth `oauth`"),
        ("auth-operations = { getThing = \"token\" }\n", "auth-operations.getThing"),
        ("headers = [\"X-Other\"]\n", "header `X-Other`"),
        ("environments = [\"staging\"]\n", "environments"),
        ("environments = []\n", "environments"),
    ] {
        let err = parse(bad).err().unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.contains(says) && err.contains("api `x`"), "{err}");
    }
}

#[test]
fn facts_are_emitted_into_the_descriptor() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/managed-headers.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let file = "xtask/fixtures/managed-headers.yaml";
    let m = parse("auth = \"basic\"\nauth-operations = { createThing = \"client-headers\" }\nheaders = [\"Psp-Id\"]\nenvironments = [\"production\"]\n").unwrap();
    let code = generate_source_for(file, &text, &m.apis[0]).unwrap();
    assert!(code.contains("auth: ::vipps_core::Auth::Basic,"), "API default");
    assert!(code.contains("auth: ::vipps_core::Auth::ClientHeaders,"), "the override");
    assert!(code.contains("headers: &[::vipps_core::ManagedHeader::PspId]"));
    assert!(code.contains("test: false") && code.contains("production: true"));
    let m = parse("auth-operations = { noSuchOperation = \"none\" }\n").unwrap();
    let err = generate_source_for(file, &text, &m.apis[0]).unwrap_err().to_string();
    assert!(err.contains("noSuchOperation"), "{err}");
}

#[test]
fn the_facade_the_test_list_and_the_readme_table_come_from_the_manifest() {
    let m = parse("environments = [\"production\"]\naccessor = \"x_api\"\n").unwrap();
    let mut apis = m.apis.clone();
    apis.push(xtask::manifest::ApiEntry::new("new-thing", "new-thing.yaml", "vipps-new-thing"));
    let facade = xtask::generate::facade(&apis);
    assert!(facade.contains("pub fn new_thing(&self) -> vipps_new_thing::Client {"), "{facade}");
    assert!(facade.contains("#[cfg(feature = \"new-thing\")]\npub mod new_thing {\n    pub use vipps_new_thing::{builder, types, ByteStream, Client, ResponseValue, API};\n    pub use vipps_core::Error;\n}"), "{facade}");
    assert!(!facade.contains("crate::helpers::"), "no helpers unless the manifest says so");
    let mut with_helpers = m.apis.clone();
    with_helpers[0].helpers = true;
    let facade = xtask::generate::facade(&with_helpers);
    assert!(facade.contains("pub use crate::helpers::x::*;"), "{facade}");
    assert!(parse("helpers = true\n").unwrap().apis[0].helpers && parse("helpers = \"yes\"\n").is_err());
    assert!(facade.contains("pub fn x_api(&self) -> Result<vipps_x::Client, vipps_core::Error> {"), "{facade}");
    assert!(facade.contains("crate::client::served_in(self.runtime(), &vipps_x::API)?;"));
    let tests = xtask::generate::test_apis(&apis);
    assert!(tests.contains("&[&vipps_x::API, &vipps_new_thing::API]"), "{tests}");
    let readme = format!("# R\n\n{}\nold rows\n{}\nafter\n", xtask::generate::README_BEGIN, xtask::generate::README_END);
    let table = xtask::generate::readme_table(&readme, &apis).unwrap();
    assert!(table.contains("| `crates/vipps-new-thing` | `openapi/new-thing.yaml` |") && !table.contains("old rows"), "{table}");
    assert!(table.contains("`x_api()`, feature `x`; production only") && table.ends_with("-->\nafter\n"), "{table}");
    assert!(parse("accessor = \"Not-An-Ident\"\n").is_err());
}

#[test]
fn operation_names_rename_the_method_and_keep_the_published_id() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/managed-headers.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let file = "xtask/fixtures/managed-headers.yaml";
    // Without the map, progenitor names the method after the published id.
    let plain = generate_source_for(file, &text, &parse("").unwrap().apis[0]).unwrap();
    assert!(plain.contains("pub fn create_thing(&self)") && !plain.contains("make_thing"));
    let m = parse("auth-operations = { createThing = \"client-headers\" }\noperation-names = { createThing = \"make_thing\" }\n").unwrap();
    let code = generate_source_for(file, &text, &m.apis[0]).unwrap();
    assert!(code.contains("pub fn make_thing(&self) -> builder::MakeThing<'_>"), "method and builder renamed");
    assert!(!code.contains("pub fn create_thing("), "the published name is gone");
    let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("method_name: \"make_thing\", operation_id: \"createThing\","), "descriptor keeps the id");
    assert!(code.contains("Published operationId: `createThing`."), "doc keeps the id");
    assert!(code.contains("auth: ::vipps_core::Auth::ClientHeaders,"), "auth-operations still by published id");
    // A name for an operation the spec lacks, or one that collides, is an error.
    let m = parse("operation-names = { noSuchOperation = \"x\" }\n").unwrap();
    let err = generate_source_for(file, &text, &m.apis[0]).unwrap_err().to_string();
    assert!(err.contains("noSuchOperation"), "{err}");
    assert!(parse("operation-names = { a = \"Not-Snake\" }\n").err().unwrap().contains("operation-names.a"));
    assert!(parse("operation-names = { a = \"same\", b = \"same\" }\n").err().unwrap().contains("two operations"));
}
