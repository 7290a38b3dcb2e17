//! Bundling: external `$ref`s (to other documents) and path items given by `$ref`, resolved
//! into one self-contained document before the other normalization rules run.
//!
//! A published document may point into another published document by a relative URL
//! (ePayment's receipt types live in Order Management's document) or keep path items
//! elsewhere (eCom). `cargo xtask fetch` downloads every document reachable that way and keeps
//! it beside the spec, in `openapi/<spec stem>.refs/`, under its *local name*
//! ([`local_name`]); codegen reads them from there, so it needs no network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{escape, SpecError};

/// Where the documents named by external `$ref`s are read from, by local name.
pub trait RefSource {
    /// The text of the document with this local name (see [`local_name`]).
    fn load(&self, name: &str) -> Result<String, String>;
}

/// A source for specs without external references: every lookup fails.
pub struct NoRefs;

impl RefSource for NoRefs {
    fn load(&self, name: &str) -> Result<String, String> {
        Err(format!("external document `{name}` referenced, but no referenced documents are available"))
    }
}

/// The referenced documents kept in a directory, `openapi/<stem>.refs/` beside the spec.
pub struct DirRefs {
    /// The directory that holds the documents under their local names.
    pub dir: PathBuf,
}

impl DirRefs {
    /// The `<stem>.refs/` directory beside a spec file (`openapi/epayment.yaml` →
    /// `openapi/epayment.refs/`).
    pub fn beside(spec: &Path) -> Self {
        Self { dir: refs_dir(spec) }
    }
}

/// The directory that holds a spec's referenced documents.
pub fn refs_dir(spec: &Path) -> PathBuf {
    let stem = spec.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    spec.with_file_name(format!("{stem}.refs"))
}

impl RefSource for DirRefs {
    fn load(&self, name: &str) -> Result<String, String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            format!("external document `{name}` is not available at {} ({e}); `cargo xtask fetch` downloads it", path.display())
        })
    }
}

/// The local name of the document a reference points at, seen from the document with local
/// name `from` (the root document's local name is the empty string).
///
/// A relative reference is joined to the directory of `from` and its `.` and `..` segments are
/// resolved lexically; `..` segments that would climb above the top are dropped, so that every
/// local name stays inside the `.refs` directory (`../../order-management/docs/swagger.yaml`
/// from the root → `order-management/docs/swagger.yaml`). An absolute URL becomes its host and
/// path (`https://example.com/a/b.yaml` → `example.com/a/b.yaml`).
pub fn local_name(from: &str, reference: &str) -> String {
    let joined = if let Ok(url) = url::Url::parse(reference) {
        format!("{}/{}", url.host_str().unwrap_or_default(), url.path())
    } else {
        let dir = from.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{reference}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The document parts (before `#`) of every external `$ref` in `doc`, in document order.
pub fn external_documents(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let document = r.split('#').next().unwrap_or("");
                    if !document.is_empty() && !out.iter().any(|d| d == document) {
                        out.push(document.to_owned());
                    }
                }
                map.values().for_each(|c| walk(c, out));
            }
            Value::Array(list) => list.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(doc, &mut out);
    out
}

/// Resolves every external `$ref` and every path item given by `$ref` in `doc`.
///
/// A reference to `/components/<section>/<name>` of another document copies that component
/// into the root document's `components/<section>` under the same name, or, when the root
/// document already has a component of that name, under the name followed by the CamelCase
/// of the other document's label (`Receipt` from `order-management/docs/swagger.yaml` →
/// `ReceiptOrderManagement`, then a number; see `document_label`). The reference then points at the copy. Any other
/// target is copied in place of the reference. References inside copied values are resolved
/// the same way, relative to the document they came from.
pub fn bundle(doc: &mut Value, file: &str, refs: &dyn RefSource) -> Result<(), SpecError> {
    let mut bundler =
        Bundler { file, refs, root: doc.clone(), docs: BTreeMap::new(), imported: BTreeMap::new(), copies: BTreeMap::new(), depth: 0 };
    let mut out = doc.clone();
    let paths: Vec<String> = doc.get("paths").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for path in paths {
        let at = format!("/paths/{}", escape(&path));
        let item = doc.pointer(&at).cloned().unwrap_or(Value::Null);
        let Some(Value::String(reference)) = item.get("$ref").cloned() else { continue };
        let (target_doc, pointer) = split(&reference, "");
        let mut target = bundler.target(&target_doc, &pointer, &format!("{at}/$ref"))?;
        if let (Value::Object(resolved), Value::Object(siblings)) = (&mut target, &item) {
            for (k, v) in siblings.iter().filter(|(k, _)| *k != "$ref") {
                resolved.insert(k.clone(), v.clone());
            }
        }
        let resolved = bundler.rewrite(target, &target_doc, &at)?;
        if let Some(slot) = out.pointer_mut(&at) {
            *slot = resolved;
        }
    }
    // The path items are resolved now, and every reference left in them points into the root.
    let mut out = bundler.rewrite(out, "", "")?;
    let root = out.as_object_mut().ok_or_else(|| SpecError::new(file, "", "not an OpenAPI document"))?;
    for ((section, name), value) in std::mem::take(&mut bundler.copies) {
        let components = root.entry("components").or_insert_with(|| Value::Object(Map::new()));
        let Some(components) = components.as_object_mut() else {
            return Err(SpecError::new(file, "/components", "`components` is not a mapping"));
        };
        let section_map = components.entry(section.clone()).or_insert_with(|| Value::Object(Map::new()));
        let Some(section_map) = section_map.as_object_mut() else {
            return Err(SpecError::new(file, format!("/components/{section}"), "not a mapping"));
        };
        section_map.insert(name, value);
    }
    *doc = out;
    Ok(())
}

/// A short label for a referenced document, to tell its components apart from the root's: the
/// first directory of its local name, or its file stem when it has no directory
/// (`order-management/docs/swagger.yaml` → `order-management`, `common.yaml` → `common`).
fn document_label(document: &str) -> String {
    match document.split_once('/') {
        Some((first, _)) => first.to_owned(),
        None => Path::new(document).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// Splits a reference into the local name of its document and its JSON pointer; a reference
/// without a document part stays in `from`. The fragment is a URI fragment, so it is
/// percent-decoded (`#/paths/~1v1~1things~1%7Bid%7D`).
fn split(reference: &str, from: &str) -> (String, String) {
    let (document, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    let document = if document.is_empty() { from.to_owned() } else { local_name(from, document) };
    (document, percent_encoding::percent_decode_str(fragment).decode_utf8_lossy().into_owned())
}

struct Bundler<'a> {
    file: &'a str,
    refs: &'a dyn RefSource,
    root: Value,
    /// Parsed referenced documents by local name.
    docs: BTreeMap<String, Value>,
    /// (document, pointer) of an imported component → the reference to its copy.
    imported: BTreeMap<(String, String), String>,
    /// The copied components by (section, name), added to the root at the end.
    copies: BTreeMap<(String, String), Value>,
    depth: usize,
}

impl Bundler<'_> {
    fn error(&self, at: &str, message: String) -> SpecError {
        SpecError::new(self.file, at, message)
    }

    fn document(&mut self, name: &str, at: &str) -> Result<&Value, SpecError> {
        if !self.docs.contains_key(name) {
            let text = self.refs.load(name).map_err(|e| self.error(at, e))?;
            let value = crate::load::parse_text(name, &text).map_err(|e| self.error(at, e.to_string()))?;
            self.docs.insert(name.to_owned(), value);
        }
        Ok(&self.docs[name])
    }

    /// The value a reference points at.
    fn target(&mut self, document: &str, pointer: &str, at: &str) -> Result<Value, SpecError> {
        let doc = if document.is_empty() { &self.root } else { self.document(document, at)? };
        doc.pointer(pointer)
            .cloned()
            .ok_or_else(|| self.error(at, format!("`{document}#{pointer}` does not exist")))
    }

    /// Rewrites the references inside `value`, which comes from `document`.
    fn rewrite(&mut self, value: Value, document: &str, at: &str) -> Result<Value, SpecError> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(self.error(at, "references nest more than 64 deep (a cycle through an inlined value?)".into()));
        }
        let result = match value {
            Value::Object(map) => {
                let reference = map.get("$ref").and_then(Value::as_str).map(str::to_owned);
                match reference {
                    Some(r) if !(document.is_empty() && r.starts_with('#')) => {
                        let (target_doc, pointer) = split(&r, document);
                        self.reference(map, &target_doc, &pointer, &format!("{at}/$ref"))
                    }
                    _ => {
                        let mut out = Map::new();
                        for (k, v) in map {
                            let child = format!("{at}/{}", escape(&k));
                            out.insert(k, self.rewrite(v, document, &child)?);
                        }
                        Ok(Value::Object(out))
                    }
                }
            }
            Value::Array(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.rewrite(v, document, &format!("{at}/{i}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other),
        };
        self.depth -= 1;
        result
    }

    /// The replacement for a `$ref` object pointing at `document#pointer`.
    fn reference(&mut self, mut map: Map<String, Value>, document: &str, pointer: &str, at: &str) -> Result<Value, SpecError> {
        if document.is_empty() {
            map.insert("$ref".into(), Value::String(format!("#{pointer}")));
            return Ok(Value::Object(map));
        }
        let tokens: Vec<&str> = pointer.split('/').collect();
        if let ["", "components", section, name] = tokens[..] {
            let key = (document.to_owned(), pointer.to_owned());
            let local = match self.imported.get(&key) {
                Some(local) => local.clone(),
                None => {
                    let name = name.replace("~1", "/").replace("~0", "~");
                    let chosen = self.free_name(section, &name, document);
                    let local = format!("#/components/{section}/{}", escape(&chosen));
                    self.imported.insert(key, local.clone());
                    self.copies.insert((section.to_owned(), chosen.clone()), Value::Null);
                    let target = self.target(document, pointer, at)?;
                    let copy = self.rewrite(target, document, at)?;
                    self.copies.insert((section.to_owned(), chosen), copy);
                    local
                }
            };
            map.insert("$ref".into(), Value::String(local));
            return Ok(Value::Object(map));
        }
        let target = self.target(document, pointer, at)?;
        self.rewrite(target, document, at)
    }

    fn free_name(&self, section: &str, name: &str, document: &str) -> String {
        let taken = |n: &str| {
            self.root.pointer(&format!("/components/{section}/{}", escape(n))).is_some()
                || self.copies.contains_key(&(section.to_owned(), n.to_owned()))
        };
        if !taken(name) {
            return name.to_owned();
        }
        let base = format!("{name}{}", crate::normalize::camel(&document_label(document)));
        if !taken(&base) {
            return base;
        }
        (2..).map(|i| format!("{base}{i}")).find(|n| !taken(n)).expect("some number is free")
    }
}

#[cfg(test)]
mod tests {
    use super::{local_name, split};

    #[test]
    fn fragments_are_percent_decoded() {
        assert_eq!(
            split("other.yaml#/paths/~1v1~1things~1%7Bid%7D", "dir/doc.yaml"),
            ("dir/other.yaml".to_owned(), "/paths/~1v1~1things~1{id}".to_owned())
        );
        assert_eq!(split("#/components/schemas/A", "x.yaml"), ("x.yaml".to_owned(), "/components/schemas/A".to_owned()));
    }

    #[test]
    fn local_names_stay_inside_the_refs_directory() {
        assert_eq!(local_name("", "../../order-management/docs/swagger.yaml"), "order-management/docs/swagger.yaml");
        assert_eq!(local_name("", "./common.yaml"), "common.yaml");
        assert_eq!(local_name("a/b/doc.yaml", "../c.yaml"), "a/c.yaml");
        assert_eq!(local_name("", "https://example.com/x/y.yaml"), "example.com/x/y.yaml");
    }
}
