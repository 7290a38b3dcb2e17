//! `openapi/manifest.toml`: the list of APIs, their specs, crates and published sources.

use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut};

/// One API of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEntry {
    /// Short name, used by `--api` and as the runtime's API name (`recurring`).
    pub name: String,
    /// Spec file name inside `openapi/`.
    pub spec: String,
    /// Crate name of the generated crate (`vipps-recurring`).
    pub crate_name: String,
    /// One line saying what the API is for, used in the crate's README and Cargo.toml.
    pub description: String,
    /// Where the published document is served.
    pub published: String,
    /// SHA-256 of the published document as last fetched.
    pub sha256: String,
}

/// The manifest file, parsed, with the document kept for round-trip edits.
pub struct Manifest {
    path: PathBuf,
    doc: DocumentMut,
    pub apis: Vec<ApiEntry>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let doc: DocumentMut = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        let tables = doc
            .get("api")
            .and_then(|a| a.as_array_of_tables())
            .ok_or_else(|| format!("{}: expected [[api]] tables", path.display()))?;
        let mut apis = Vec::new();
        for (i, t) in tables.iter().enumerate() {
            let field = |k: &str| -> Result<String, String> {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{}: api[{i}] lacks string field `{k}`", path.display()))
            };
            apis.push(ApiEntry {
                name: field("name")?,
                spec: field("spec")?,
                crate_name: field("crate")?,
                description: field("description")?,
                published: field("published")?,
                sha256: field("sha256").unwrap_or_default(),
            });
        }
        Ok(Self { path: path.to_owned(), doc, apis })
    }

    /// Records a new checksum for `name` and writes the manifest back, keeping its comments.
    pub fn set_sha256(&mut self, name: &str, sha256: &str) -> Result<(), String> {
        let tables = self.doc["api"].as_array_of_tables_mut().expect("checked at load");
        let table = tables
            .iter_mut()
            .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(name))
            .ok_or_else(|| format!("no API named `{name}` in the manifest"))?;
        table["sha256"] = value(sha256);
        for api in &mut self.apis {
            if api.name == name {
                api.sha256 = sha256.to_owned();
            }
        }
        std::fs::write(&self.path, self.doc.to_string()).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    pub fn get(&self, name: &str) -> Option<&ApiEntry> {
        self.apis.iter().find(|a| a.name == name)
    }
}
