//! `openapi/manifest.toml`: the list of APIs, their specs, crates and published sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut, InlineTable, Item};

/// Names the facade (`crates/vipps/src/lib.rs`) defines itself. A generated re-export under one
/// of them would be shadowed by the facade's own item without any warning (a glob re-export
/// loses to an explicit one), so an API may not take them as its `module`.
pub const FACADE_NAMES: &[&str] = &["webhooks", "vipps_core", "reqwest", "generated", "client", "helpers"];

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
    /// How the API authenticates (`auth`, default `bearer-token`): one of [`AUTH_KINDS`].
    pub auth: String,
    /// Operations that authenticate otherwise, by operationId (`auth-operations`).
    pub auth_operations: BTreeMap<String, String>,
    /// Extra managed headers the API takes (`headers`): some of [`MANAGED_HEADERS`].
    pub headers: Vec<String>,
    /// Where the API is served (`environments`, default both): some of [`ENVIRONMENTS`].
    pub environments: Vec<String>,
    /// The facade's accessor method (`accessor`, default the name in snake case).
    pub accessor: String,
    /// The module the facade re-exports the crate as (`module`, default the name in snake case).
    pub module: String,
    /// Method names for operations whose published operationId makes a poor Rust name
    /// (`operation-names = { acceptUsingPATCHV3 = "force_accept_agreement" }`), by published
    /// operationId. The generated method and builder are named after the value; the published
    /// id stays in the method's doc, the `OperationDescriptor` and tracing.
    pub operation_names: BTreeMap<String, String>,
    /// Whether the facade has hand-written helpers for the API (`helpers = true`), in
    /// `crates/vipps/src/helpers/<module>.rs`, which its namespace re-exports.
    pub helpers: bool,
}

/// The values of `auth`, and the `vipps_core::Auth` variant each becomes.
pub const AUTH_KINDS: &[(&str, &str)] =
    &[("bearer-token", "BearerToken"), ("client-headers", "ClientHeaders"), ("basic", "Basic"), ("user-token", "UserToken"), ("none", "None")];

/// The values of `headers`, and the `vipps_core::ManagedHeader` variant each becomes.
pub const MANAGED_HEADERS: &[(&str, &str)] = &[("Psp-Id", "PspId")];

/// The values of `environments`.
pub const ENVIRONMENTS: &[&str] = &["test", "production"];

impl ApiEntry {
    /// An entry with the defaults of every optional field (used for fixture specs).
    pub fn new(name: &str, spec: &str, crate_name: &str) -> Self {
        Self {
            name: name.into(),
            spec: spec.into(),
            crate_name: crate_name.into(),
            description: String::new(),
            published: String::new(),
            sha256: String::new(),
            auth: "bearer-token".into(),
            auth_operations: BTreeMap::new(),
            headers: Vec::new(),
            environments: ENVIRONMENTS.iter().map(|e| e.to_string()).collect(),
            accessor: name.replace('-', "_"),
            module: name.replace('-', "_"),
            operation_names: BTreeMap::new(),
            helpers: false,
        }
    }

    /// Whether the API is served in every environment.
    pub fn everywhere(&self) -> bool {
        ENVIRONMENTS.iter().all(|e| self.environments.iter().any(|x| x == e))
    }
}

/// A lower snake_case identifier (`force_accept_agreement`).
fn is_snake_ident(v: &str) -> bool {
    v.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `vipps_core::Auth` variant of an `auth` value.
pub fn auth_variant(kind: &str) -> Option<&'static str> {
    AUTH_KINDS.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// The `vipps_core::ManagedHeader` variant of a `headers` value.
pub fn header_variant(name: &str) -> Option<&'static str> {
    MANAGED_HEADERS.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
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
            let name = field("name")?;
            let bad = |what: String| format!("{}: api `{name}`: {what}", path.display());
            let strings = |k: &str| -> Result<Option<Vec<String>>, String> {
                let Some(item) = t.get(k) else { return Ok(None) };
                let list = item.as_array().ok_or_else(|| bad(format!("`{k}` is not a list")))?;
                list.iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("`{k}` holds a non-string"))))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            };
            let auth = t.get("auth").and_then(|v| v.as_str()).unwrap_or("bearer-token").to_owned();
            let known = || AUTH_KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
            if auth_variant(&auth).is_none() {
                return Err(bad(format!("auth `{auth}` is not one of {}", known())));
            }
            let mut auth_operations = BTreeMap::new();
            if let Some(item) = t.get("auth-operations") {
                let table = item.as_table_like().ok_or_else(|| bad("`auth-operations` is not a table".into()))?;
                for (op, v) in table.iter() {
                    let kind = v.as_str().filter(|k| auth_variant(k).is_some());
                    let kind = kind.ok_or_else(|| bad(format!("auth-operations.{op} is not one of {}", known())))?;
                    auth_operations.insert(op.to_owned(), kind.to_owned());
                }
            }
            let mut operation_names = BTreeMap::new();
            if let Some(item) = t.get("operation-names") {
                let table = item.as_table_like().ok_or_else(|| bad("`operation-names` is not a table".into()))?;
                for (op, v) in table.iter() {
                    let method = v.as_str().filter(|m| is_snake_ident(m));
                    let method = method.ok_or_else(|| bad(format!("operation-names.{op} is not a snake_case identifier")))?;
                    if operation_names.values().any(|m| m == method) {
                        return Err(bad(format!("operation-names gives `{method}` to two operations")));
                    }
                    operation_names.insert(op.to_owned(), method.to_owned());
                }
            }
            let headers = strings("headers")?.unwrap_or_default();
            if let Some(h) = headers.iter().find(|h| header_variant(h).is_none()) {
                return Err(bad(format!("header `{h}` is not one the runtime manages ({})", MANAGED_HEADERS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "))));
            }
            let environments = strings("environments")?.unwrap_or_else(|| ENVIRONMENTS.iter().map(|e| e.to_string()).collect());
            if environments.is_empty() || environments.iter().any(|e| !ENVIRONMENTS.contains(&e.as_str())) {
                return Err(bad(format!("environments must be some of {ENVIRONMENTS:?}")));
            }
            let ident = |k: &str| -> Result<String, String> {
                let v = t.get(k).and_then(|v| v.as_str()).map_or_else(|| name.replace('-', "_"), str::to_owned);
                is_snake_ident(&v).then_some(v.clone()).ok_or_else(|| bad(format!("`{k}` = `{v}` is not a snake_case identifier")))
            };
            let module = ident("module")?;
            if FACADE_NAMES.contains(&module.as_str()) {
                return Err(bad(format!(
                    "`module` = `{module}` is a name the facade already uses for something else; set `module` to another name"
                )));
            }
            apis.push(ApiEntry {
                accessor: ident("accessor")?,
                module,
                spec: field("spec")?,
                crate_name: field("crate")?,
                description: field("description")?,
                published: field("published")?,
                sha256: field("sha256").unwrap_or_default(),
                auth,
                auth_operations,
                operation_names,
                helpers: match t.get("helpers") {
                    None => false,
                    Some(v) => v.as_bool().ok_or_else(|| bad("`helpers` is not true or false".into()))?,
                },
                headers,
                environments,
                name,
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
