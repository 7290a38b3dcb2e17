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
