//! `openapi/manifest.toml`: the list of APIs, their specs, crates and published sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut, InlineTable, Item};

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
    /// The `[[api]]` entries, in file order.
    pub apis: Vec<ApiEntry>,
}

impl Manifest {
    /// Reads and parses the manifest file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses manifest text; `path` is kept for writing it back and for error messages.
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
        self.record_fetch(name, sha256, &BTreeMap::new())
    }

    /// Records what `cargo xtask fetch` wrote for `name`: the document's checksum, and the
    /// checksums of the documents its external `$ref`s point at, by local name, as
    /// `refs = { "order-management/docs/swagger.yaml" = "<sha256>" }` (the key is left out
    /// when there are none). Writes the manifest back, keeping its comments.
    pub fn record_fetch(&mut self, name: &str, sha256: &str, refs: &BTreeMap<String, String>) -> Result<(), String> {
        let tables = self.doc["api"].as_array_of_tables_mut().expect("checked at load");
        let table = tables
            .iter_mut()
            .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(name))
            .ok_or_else(|| format!("no API named `{name}` in the manifest"))?;
        table["sha256"] = value(sha256);
        if refs.is_empty() {
            table.remove("refs");
        } else {
            let mut inline = InlineTable::new();
            for (file, sum) in refs {
                inline.insert(file, sum.as_str().into());
            }
            table["refs"] = Item::Value(inline.into());
        }
        for api in &mut self.apis {
            if api.name == name {
                api.sha256 = sha256.to_owned();
            }
        }
        std::fs::write(&self.path, self.doc.to_string()).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// The checksums of the referenced documents last fetched for `name`, by local name.
    pub fn refs(&self, name: &str) -> BTreeMap<String, String> {
        let Some(tables) = self.doc.get("api").and_then(|a| a.as_array_of_tables()) else { return BTreeMap::new() };
        let Some(table) = tables.iter().find(|t| t.get("name").and_then(|v| v.as_str()) == Some(name)) else {
            return BTreeMap::new();
        };
        let Some(refs) = table.get("refs").and_then(|r| r.as_table_like()) else { return BTreeMap::new() };
        refs.iter().filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned()))).collect()
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&ApiEntry> {
        self.apis.iter().find(|a| a.name == name)
    }
}
