//! The project's automation, as a library so that its tests (and the drift check inside
//! `cargo test --workspace`) call the same code as `cargo xtask`.

pub mod bundle;
pub mod check;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod load;
pub mod manifest;
pub mod normalize;

use std::path::{Path, PathBuf};

use similar::TextDiff;

pub use error::SpecError;
use generate::Files;
use manifest::Manifest;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// The manifest of the workspace at `root`.
pub fn manifest(root: &Path) -> Result<Manifest, String> {
    Manifest::load(&root.join("openapi/manifest.toml"))
}

/// Generates every crate (or only `only`) in memory.
pub fn generate_all(root: &Path, only: Option<&str>) -> Result<Files, String> {
    let manifest = manifest(root)?;
    if let Some(name) = only {
        if manifest.get(name).is_none() {
            return Err(format!("no API named `{name}` in openapi/manifest.toml"));
        }
    }
    let mut files = Files::new();
    let mut errors = Vec::new();
    for api in manifest.apis.iter().filter(|a| only.is_none_or(|n| n == a.name)) {
        match generate::generate_crate(root, api) {
            Ok(f) => files.extend(f),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors.join("\n"))
    }
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
    let crate_dirs: std::collections::BTreeSet<PathBuf> =
        files.keys().filter_map(|p| p.components().take(2).collect::<PathBuf>().into()).collect();
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
