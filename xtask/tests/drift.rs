//! The drift check: the committed generated crates are exactly what the generator writes.
//! This runs inside `cargo test --workspace`, so CI fails on hand edits or stale output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// A scratch copy of `openapi/` and the generated crates.
fn scratch_workspace(tag: &str) -> PathBuf {
    let root = xtask::workspace_root().unwrap();
    let dir = std::env::temp_dir().join(format!("vipps-xtask-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root.join("openapi"), &dir.join("openapi"));
    for api in xtask::manifest(&root).unwrap().apis {
        let krate = Path::new("crates").join(&api.crate_name);
        copy_dir(&root.join(&krate), &dir.join(&krate));
    }
    dir
}

#[test]
fn committed_crates_match_the_generator() {
    let root = xtask::workspace_root().unwrap();
    let started = Instant::now();
    let files = xtask::generate_all(&root, None).unwrap().complete().unwrap();
    let took = started.elapsed();
    let diffs = xtask::drift(&root, &files);
    assert!(diffs.is_empty(), "generated crates drifted; run `cargo xtask codegen`:\n{}", diffs.join("\n"));
    // Five files per crate (Cargo.toml, README.md, src/lib.rs and the two license texts), and
    // the facade's `generated.rs`, `tests/apis.rs` and the README.
    assert_eq!(files.len(), 5 * xtask::manifest(&root).unwrap().apis.len() + 3);
    assert!(took < Duration::from_secs(10), "codegen took {took:?}");
}

#[test]
fn generation_is_deterministic() {
    let root = xtask::workspace_root().unwrap();
    let once = || xtask::generate_all(&root, Some("recurring")).unwrap().complete().unwrap();
    assert_eq!(once(), once());
}

#[test]
fn one_changed_byte_fails_the_check_with_a_diff_naming_the_file() {
    let dir = scratch_workspace("drift");
    let lib = dir.join("crates/vipps-recurring/src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).unwrap();
    let at = text.find("pub struct Client").unwrap();
    text.replace_range(at..at + 1, "P");
    std::fs::write(&lib, text).unwrap();
    std::fs::write(dir.join("crates/vipps-psp/src/extra.rs"), "// hand-written\n").unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["codegen", "--check"])
        .env("VIPPS_XTASK_ROOT", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("drift in crates/vipps-recurring/src/lib.rs"), "{stderr}");
    assert!(stderr.contains("-Pub struct Client") && stderr.contains("+pub struct Client"), "{stderr}");
    assert!(stderr.contains("crates/vipps-psp/src/extra.rs: file is not written by the generator"), "{stderr}");

    // Regenerating repairs the copy (and leaves the stray file, which still fails).
    std::fs::remove_file(dir.join("crates/vipps-psp/src/extra.rs")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("codegen").env("VIPPS_XTASK_ROOT", &dir).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote crates/vipps-recurring/src/lib.rs"));
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["codegen", "--check"]).env("VIPPS_XTASK_ROOT", &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_spec_is_reported_with_file_and_pointer() {
    let dir = scratch_workspace("broken");
    std::fs::write(dir.join("openapi/psp.yaml"), "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["codegen", "--check"]).env("VIPPS_XTASK_ROOT", &dir).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("openapi/psp.yaml#/openapi: OpenAPI 3.1.0 is not supported"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn one_failing_api_does_not_stop_the_others() {
    let dir = scratch_workspace("partial");
    std::fs::write(dir.join("openapi/psp.yaml"), "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n").unwrap();
    let lib = dir.join("crates/vipps-recurring/src/lib.rs");
    let good = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, "// stale\n").unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("codegen").env("VIPPS_XTASK_ROOT", &dir).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a failed API makes the run fail");
    assert!(stderr.contains("error: API `psp` failed: openapi/psp.yaml#/openapi: OpenAPI 3.1.0 is not supported"), "{stderr}");
    assert!(stderr.contains("1 API(s) failed: psp"), "{stderr}");
    assert!(stdout.contains("wrote crates/vipps-recurring/src/lib.rs"), "the APIs after the failing one are still written: {stdout}");
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), good);

    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["codegen", "--check"]).env("VIPPS_XTASK_ROOT", &dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("API `psp` failed"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("files up to date"), "the others are checked");
    let _ = std::fs::remove_dir_all(dir);
}
