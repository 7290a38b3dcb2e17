//! `cargo xtask add <name> --from <url-or-file>`: adds an API to the workspace in one step.
//!
//! 1. appends an `[[api]]` entry to `openapi/manifest.toml` (spec `<name>.yaml`, crate
//!    `vipps-<name>`, a description from the document's title, `published` = the source);
//! 2. fetches the document (and what it references) as `cargo xtask fetch --api <name>` does;
//! 3. wires the crate in: a `[workspace.dependencies]` entry, the facade's optional dependency
//!    and feature (on by default), and a dev-dependency of the workspace tests (workspace
//!    members are `crates/*` already);
//! 4. generates every crate, and the facade's accessor and re-export, the tests' API list and
//!    the README's crate table, which come from the manifest.

use std::path::Path;

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

/// Whether `name` can name an API: lowercase ASCII letters, digits and inner dashes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn edit(root: &Path, file: &str, f: impl FnOnce(&mut DocumentMut) -> Result<(), String>) -> Result<(), String> {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{file}: {e}"))?;
    f(&mut doc)?;
    std::fs::write(&path, doc.to_string()).map_err(|e| format!("{file}: {e}"))
}

fn table<'a>(doc: &'a mut Item, key: &str, file: &str) -> Result<&'a mut Table, String> {
    doc.get_mut(key).and_then(Item::as_table_mut).ok_or_else(|| format!("{file}: no [{key}] table"))
}

fn inline(pairs: &[(&str, toml_edit::Value)]) -> Item {
    let mut t = InlineTable::new();
    for (k, v) in pairs {
        t.insert(*k, v.clone());
    }
    Item::Value(t.into())
}

/// Adds crate `krate` of API `name` to the workspace's, the facade's and the tests' Cargo.toml
/// (leaving entries that exist as they are).
pub fn wire(root: &Path, name: &str, krate: &str) -> Result<(), String> {
    edit(root, "Cargo.toml", |doc| {
        let workspace = table(doc.as_item_mut(), "workspace", "Cargo.toml")?;
        // A version beside the path, so that `cargo package` can write the dependency.
        let version = workspace.get("package").and_then(|p| p.get("version")).and_then(Item::as_str)
            .ok_or("Cargo.toml: no workspace.package.version")?.to_owned();
        let deps = workspace.get_mut("dependencies").and_then(Item::as_table_mut).ok_or("Cargo.toml: no [workspace.dependencies]")?;
        if !deps.contains_key(krate) {
            deps.insert(krate, inline(&[("path", format!("crates/{krate}").into()), ("version", version.into())]));
        }
        Ok(())
    })?;
    edit(root, "crates/vipps/Cargo.toml", |doc| {
        let file = "crates/vipps/Cargo.toml";
        let features = table(doc.as_item_mut(), "features", file)?;
        if !features.contains_key(name) {
            let mut dep = Array::new();
            dep.push(format!("dep:{krate}"));
            features.insert(name, value(dep));
        }
        let default = features.get_mut("default").and_then(Item::as_array_mut).ok_or(format!("{file}: no default features"))?;
        if !default.iter().any(|v| v.as_str() == Some(name)) {
            default.push(name);
        }
        let deps = table(doc.as_item_mut(), "dependencies", file)?;
        if !deps.contains_key(krate) {
            deps.insert(krate, inline(&[("workspace", true.into()), ("optional", true.into())]));
        }
        Ok(())
    })?;
    edit(root, "tests/Cargo.toml", |doc| {
        let deps = table(doc.as_item_mut(), "dev-dependencies", "tests/Cargo.toml")?;
        if !deps.contains_key(krate) {
            deps.insert(krate, inline(&[("workspace", true.into())]));
        }
        Ok(())
    })
}

/// Appends the manifest entry of a new API.
pub fn add_entry(root: &Path, name: &str, from: &str, title: &str) -> Result<(), String> {
    edit(root, "openapi/manifest.toml", |doc| {
        let apis = doc.get_mut("api").and_then(Item::as_array_of_tables_mut).ok_or("openapi/manifest.toml: no [[api]] tables")?;
        let mut t = Table::new();
        t.insert("name", value(name));
        t.insert("spec", value(format!("{name}.yaml")));
        t.insert("crate", value(format!("vipps-{name}")));
        t.insert("description", value(format!("Generated client for the Vipps MobilePay {}.", title.trim().trim_end_matches('.'))));
        t.insert("published", value(from));
        t.insert("sha256", value(""));
        // The facade's own `webhooks` module (verification) and the like keep their names;
        // the API's client is re-exported beside them as `<name>_api`.
        let module = name.replace('-', "_");
        if crate::manifest::FACADE_NAMES.contains(&module.as_str()) {
            t.insert("module", value(format!("{module}_api")));
        }
        apis.push(t);
        Ok(())
    })
}

/// Runs the whole addition; returns what it did, line by line.
pub fn run(root: &Path, name: &str, from: &str) -> Result<Vec<String>, String> {
    if !valid_name(name) {
        return Err(format!("`{name}` is not a valid API name (lowercase letters, digits and dashes)"));
    }
    if crate::manifest(root)?.get(name).is_some() {
        return Err(format!("openapi/manifest.toml already has an API named `{name}`"));
    }
    // The document is read (and checked) before anything is written.
    let bytes = crate::fetch::read_source(from)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{from}: not UTF-8 text"))?;
    let doc = crate::load::parse_text(from, text).map_err(|e| e.to_string())?;
    crate::load::check_version(from, &doc).map_err(|e| e.to_string())?;
    let title = doc.pointer("/info/title").and_then(|t| t.as_str()).unwrap_or(name).to_owned();
    // A failed fetch (of the document's references) takes the entry out again, so that the
    // manifest is as it was and the same `add` can be run once more.
    let manifest_path = root.join("openapi/manifest.toml");
    let before = std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    add_entry(root, name, from, &title)?;
    let mut lines = vec![format!("{name}: added to openapi/manifest.toml")];
    match crate::fetch::run(root, Some(name), Some(from)) {
        Ok(fetched) => lines.extend(fetched),
        Err(e) => {
            std::fs::write(&manifest_path, before).map_err(|w| format!("{e}; and restoring the manifest failed: {w}"))?;
            return Err(format!("{e} (nothing was added)"));
        }
    }
    let krate = format!("vipps-{name}");
    wire(root, name, &krate)?;
    lines.push(format!("{name}: wired {krate} into Cargo.toml, crates/vipps (feature `{name}`) and tests"));
    let generated = crate::generate_all(root, None)?;
    if let Some((_, e)) = generated.failures.iter().find(|(n, _)| n == name) {
        return Err(format!("{name}: added and wired, but does not generate: {e}"));
    }
    let changed = crate::write(root, &generated.files).map_err(|e| e.to_string())?;
    lines.push(format!("{name}: codegen wrote {} file(s)", changed.len()));
    Ok(lines)
}
