//! The project's automation, as a library so that its tests (and the drift check inside
//! `cargo test --workspace`) call the same code as `cargo xtask`.

pub mod add;
pub mod bundle;
pub mod check;
pub mod ergonomics;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod load;
pub mod manifest;
pub mod normalize;
pub mod open_enums;

use std::path::{Path, PathBuf};

use similar::TextDiff;

pub use error::SpecError;
use generate::Files;
use manifest::Manifest;

/// The environment variable that names the workspace to work on, overriding the search
/// (tests point the tool at a scratch copy with it).
pub const ROOT_VARIABLE: &str = "VIPPS_XTASK_ROOT";

/// The workspace `cargo xtask` works on: the directory named by `VIPPS_XTASK_ROOT` when it is
/// set, otherwise the one [`find_workspace`] finds from the current directory.
///
/// It is found at run time, not compiled in: several checkouts can share one target directory
/// (and so one `xtask` binary that cargo does not rebuild), and each must work on itself.
pub fn workspace_root() -> Result<PathBuf, String> {
    if let Some(root) = std::env::var_os(ROOT_VARIABLE) {
        return Ok(PathBuf::from(root));
    }
    let here = std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    find_workspace(&here).ok_or_else(|| {
        format!(
            "no workspace found at or above {}: looked for a Cargo.toml with [workspace] beside openapi/manifest.toml",
            here.display()
        )
    })
}

/// The nearest directory at or above `start` that holds a `Cargo.toml` with a `[workspace]`
/// table and an `openapi/manifest.toml`.
pub fn find_workspace(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|dir| is_workspace(dir)).map(Path::to_owned)
}

fn is_workspace(dir: &Path) -> bool {
    if !dir.join("openapi/manifest.toml").is_file() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else { return false };
    text.parse::<toml_edit::DocumentMut>().is_ok_and(|doc| doc.get("workspace").is_some_and(|w| w.is_table()))
}

/// The manifest of the workspace at `root`.
pub fn manifest(root: &Path) -> Result<Manifest, String> {
    Manifest::load(&root.join("openapi/manifest.toml"))
}

/// The outcome of generating several APIs: the files of those that generated, and why the
/// others did not.
#[derive(Debug, Default)]
pub struct Generated {
    /// The files of every API that generated.
    pub files: Files,
    /// The APIs that failed, by manifest name, with their error.
    pub failures: Vec<(String, SpecError)>,
}

impl Generated {
    /// The files, or every failure on one line each (`<api>: <error>`) when any API failed.
    pub fn complete(self) -> Result<Files, String> {
        if self.failures.is_empty() {
            Ok(self.files)
        } else {
            Err(self.failures.iter().map(|(api, e)| format!("{api}: {e}")).collect::<Vec<_>>().join("\n"))
        }
    }
}

/// Generates every crate (or only `only`) in memory. One API failing does not stop the
/// others: its error is collected in [`Generated::failures`]. Only an unreadable manifest or
/// an unknown `only` is an error of the whole run.
pub fn generate_all(root: &Path, only: Option<&str>) -> Result<Generated, String> {
    let manifest = manifest(root)?;
    if let Some(name) = only {
        if manifest.get(name).is_none() {
            return Err(format!("no API named `{name}` in openapi/manifest.toml"));
        }
    }
    let mut out = Generated::default();
    out.files.insert(PathBuf::from("crates/vipps/src/generated.rs"), generate::facade(&manifest.apis));
    out.files.insert(PathBuf::from("tests/apis.rs"), generate::test_apis(&manifest.apis));
    // The README's crate table, where the README has the markers for it.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let mut readme = readme;
    if readme.contains(generate::README_BEGIN) {
        readme = generate::readme_table(&readme, &manifest.apis)?;
    }
    // The coverage table, when every API's spec prepares (a failing one is reported below).
    if readme.contains(generate::COVERAGE_BEGIN) {
        let ops: Result<Vec<_>, _> = manifest.apis.iter().map(|api| generate::api_operations(root, api).map(|ops| (api, ops))).collect();
        if let Ok(ops) = ops {
            readme = generate::coverage_table(&readme, &ops)?;
        }
    }
    if readme.contains(generate::README_BEGIN) || readme.contains(generate::COVERAGE_BEGIN) {
        out.files.insert(PathBuf::from("README.md"), readme);
    }
    for api in manifest.apis.iter().filter(|a| only.is_none_or(|n| n == a.name)) {
        match generate::generate_crate(root, api) {
            Ok(f) => out.files.extend(f),
            Err(e) => out.failures.push((api.name.clone(), e)),
        }
    }
    Ok(out)
}

/// Writes generated files to disk; returns the paths that changed.
pub fn write(root: &Path, files: &Files) -> std::io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for (path, content) in files {
        let full = root.join(path);
        if std::fs::read_to_string(&full).ok().as_deref() != Some(content.as_str()) {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&full, content)?;
            changed.push(path.clone());
        }
    }
    Ok(changed)
}

/// Compares generated files with the files on disk and returns a unified diff per drifted
/// file (empty when there is no drift). Files in a generated crate's directory that the
/// generator does not write count as drift too.
pub fn drift(root: &Path, files: &Files) -> Vec<String> {
    let mut diffs = Vec::new();
    for (path, expected) in files {
        let actual = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        if actual != *expected {
            let name = path.display().to_string();
            let diff = TextDiff::from_lines(&actual, expected)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{name} (on disk)"), &format!("b/{name} (generated)"))
                .to_string();
            diffs.push(format!("drift in {name}:\n{diff}"));
        }
    }
    // A generated crate is the directory of a generated `Cargo.toml`; the other generated files
    // (the facade's `generated.rs`, `tests/apis.rs`, the README) sit among hand-written ones.
    let crate_dirs: std::collections::BTreeSet<PathBuf> = files
        .keys()
        .filter(|p| p.file_name().is_some_and(|n| n == "Cargo.toml"))
        .filter_map(|p| p.parent().map(PathBuf::from))
        .collect();
    for dir in crate_dirs {
        for extra in list_files(&root.join(&dir)) {
            let rel = extra.strip_prefix(root).unwrap_or(&extra).to_owned();
            if !files.contains_key(&rel) {
                diffs.push(format!("drift in {}: file is not written by the generator", rel.display()));
            }
        }
    }
    diffs
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(list_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
