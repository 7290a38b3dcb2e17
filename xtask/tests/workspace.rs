//! `cargo xtask` works on the workspace it is run in, found from the current directory at run
//! time, not on the checkout its binary was built from.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("vipps-workspace-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A workspace with one API, generated from a fixture spec.
fn tiny_workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join("openapi")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::write(
        dir.join("openapi/manifest.toml"),
        "[[api]]\nname = \"tiny\"\nspec = \"tiny.yaml\"\ncrate = \"vipps-tiny\"\ndescription = \"A fixture.\"\npublished = \"http://127.0.0.1:9/tiny.yaml\"\n",
    )
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/server-path.yaml");
    std::fs::copy(fixture, dir.join("openapi/tiny.yaml")).unwrap();
}

#[test]
fn codegen_works_on_the_workspace_around_the_current_directory() {
    let dir = scratch("cwd");
    tiny_workspace(&dir);
    let below = dir.join("some/sub/dir");
    std::fs::create_dir_all(&below).unwrap();
    let xtask = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.current_dir(&below).env_remove("VIPPS_XTASK_ROOT");
        c
    };

    let out = xtask().args(["codegen", "--check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nothing is generated in the scratch workspace yet");
    assert!(stderr.contains("drift in crates/vipps-tiny/src/lib.rs"), "{stderr}");

    let out = xtask().arg("codegen").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("crates/vipps-tiny/src/lib.rs").is_file());
    let out = xtask().args(["codegen", "--check"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn outside_a_workspace_the_tool_says_so() {
    let dir = scratch("none");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["codegen", "--check"])
        .current_dir(&dir)
        .env_remove("VIPPS_XTASK_ROOT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workspace found at or above"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_search_skips_directories_that_are_not_this_kind_of_workspace() {
    let dir = scratch("nested");
    tiny_workspace(&dir);
    // A nested workspace without openapi/, and a package (not a workspace) with a manifest.
    let inner = dir.join("vendor/other");
    std::fs::create_dir_all(inner.join("src")).unwrap();
    std::fs::write(inner.join("Cargo.toml"), "[workspace]\n").unwrap();
    let package = inner.join("src/pkg");
    std::fs::create_dir_all(package.join("openapi")).unwrap();
    std::fs::write(package.join("Cargo.toml"), "[package]\nname = \"p\"\n").unwrap();
    std::fs::write(package.join("openapi/manifest.toml"), "").unwrap();
    assert_eq!(xtask::find_workspace(&package), Some(dir.clone()));
    assert_eq!(xtask::find_workspace(&dir), Some(dir.clone()));
    assert_eq!(xtask::find_workspace(&std::env::temp_dir()), None);
    let _ = std::fs::remove_dir_all(dir);
}
