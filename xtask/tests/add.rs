//! `cargo xtask add` on a scratch copy of the workspace's manifest, specs and Cargo files.

use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn scratch() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = xtask::workspace_root().unwrap();
    let dir = std::env::temp_dir().join(format!("vipps-xtask-add-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root.join("openapi"), &dir.join("openapi"));
    for file in ["Cargo.toml", "README.md", "crates/vipps/Cargo.toml", "tests/Cargo.toml"] {
        std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
        std::fs::copy(root.join(file), dir.join(file)).unwrap();
    }
    dir
}

#[test]
fn add_writes_the_entry_the_spec_the_wiring_and_the_crate() {
    let dir = scratch();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/open-enums.yaml");
    let from = from.to_str().unwrap();
    let lines = xtask::add::run(&dir, "new-thing", from).unwrap();
    assert!(lines.iter().any(|l| l.contains("wired vipps-new-thing")), "{lines:?}");

    let manifest = xtask::manifest(&dir).unwrap();
    let api = manifest.get("new-thing").expect("the manifest entry");
    assert_eq!((api.spec.as_str(), api.crate_name.as_str(), api.published.as_str()), ("new-thing.yaml", "vipps-new-thing", from));
    assert_eq!(api.description, "Generated client for the Vipps MobilePay Open enums.");
    assert_eq!(api.sha256.len(), 64, "fetched, with its checksum recorded");
    assert_eq!(std::fs::read(dir.join("openapi/new-thing.yaml")).unwrap(), std::fs::read(from).unwrap());

    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert!(read("Cargo.toml").contains(r#"vipps-new-thing = { path = "crates/vipps-new-thing", version = "0.1.0" }"#));
    let facade = read("crates/vipps/Cargo.toml");
    assert!(facade.contains(r#"new-thing = ["dep:vipps-new-thing"]"#) && facade.contains(r#", "new-thing"]"#), "{facade}");
    assert!(facade.contains("vipps-new-thing = { workspace = true, optional = true }"), "{facade}");
    assert!(read("tests/Cargo.toml").contains("vipps-new-thing = { workspace = true }"));
    assert!(read("crates/vipps-new-thing/src/lib.rs").contains("pub static API: ::vipps_core::ApiDescriptor"));
    assert!(read("crates/vipps/src/generated.rs").contains("pub fn new_thing(&self) -> vipps_new_thing::Client {"));
    assert!(read("tests/apis.rs").contains("&vipps_new_thing::API"));
    assert!(read("README.md").contains("| `crates/vipps-new-thing` | `openapi/new-thing.yaml` |"));
    // What `codegen --check` compares: nothing drifted.
    let files = xtask::generate_all(&dir, None).unwrap().complete().unwrap();
    assert!(xtask::drift(&dir, &files).is_empty());

    let again = xtask::add::run(&dir, "new-thing", from).unwrap_err();
    assert!(again.contains("already has"), "{again}");
    assert!(xtask::add::run(&dir, "Bad_Name", from).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_add_leaves_the_manifest_as_it_was() {
    let dir = scratch();
    let before = std::fs::read_to_string(dir.join("openapi/manifest.toml")).unwrap();
    // A document whose external `$ref` points at a file that is not there.
    let lonely = dir.join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/external-ref.yaml")).unwrap();
    std::fs::write(lonely.join("external-ref.yaml"), text).unwrap();
    let err = xtask::add::run(&dir, "lonely", lonely.join("external-ref.yaml").to_str().unwrap()).unwrap_err();
    assert!(err.contains("nothing was added"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("openapi/manifest.toml")).unwrap(), before);
    // The same name can be added once the document is whole.
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/open-enums.yaml");
    xtask::add::run(&dir, "lonely", from.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_api_named_like_a_facade_module_is_re_exported_under_another_name() {
    // `client` is a facade module (`vipps::client`); `webhooks`, the other example, is in
    // the manifest already.
    let dir = scratch();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/open-enums.yaml");
    xtask::add::run(&dir, "client", from.to_str().unwrap()).unwrap();
    let manifest = xtask::manifest(&dir).unwrap();
    assert_eq!(manifest.get("client").unwrap().module, "client_api");
    let generated = std::fs::read_to_string(dir.join("crates/vipps/src/generated.rs")).unwrap();
    assert!(generated.contains("pub mod client_api"), "{generated}");
    // Written by hand, the clashing name is refused.
    let text = std::fs::read_to_string(dir.join("openapi/manifest.toml")).unwrap();
    std::fs::write(dir.join("openapi/manifest.toml"), text.replace("module = \"client_api\"", "module = \"client\"")).unwrap();
    let Err(err) = xtask::manifest(&dir) else { panic!("a clashing module name was accepted") };
    assert!(err.contains("facade already uses"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
