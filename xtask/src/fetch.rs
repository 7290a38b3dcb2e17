//! `cargo xtask fetch`: replaces a spec with the published document and records its checksum,
//! so that `git diff openapi/` shows how the spec kept here differs from the published one.
//!
//! The documents its external `$ref`s point at (and theirs, transitively) are fetched too,
//! resolved against the document's URL, and kept beside the spec in
//! `openapi/<stem>.refs/<local name>` (see [`crate::bundle`]) with their checksums in the
//! manifest, so that codegen works offline. A local document's absolute references are read
//! from copies beside it when it has them (see [`local_copy`]).

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use url::Url;

use crate::bundle::{external_documents, local_name, refs_dir};

/// Reads a document from an `http(s)://` URL, a `file://` URL or a local path.
pub fn read_source(source: &str) -> Result<Vec<u8>, String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let response = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .and_then(|c| c.get(source).send())
            .map_err(|e| format!("{source}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{source}: HTTP {status}"));
        }
        Ok(response.bytes().map_err(|e| format!("{source}: {e}"))?.to_vec())
    } else {
        let path = source.strip_prefix("file://").unwrap_or(source);
        std::fs::read(path).map_err(|e| format!("{path}: {e}"))
    }
}

/// The URL of a source as `read_source` takes it, to resolve relative references against.
fn source_url(source: &str) -> Result<Url, String> {
    if let Ok(url) = Url::parse(source) {
        if matches!(url.scheme(), "http" | "https" | "file") {
            return Ok(url);
        }
    }
    let path = std::path::absolute(source).map_err(|e| format!("{source}: {e}"))?;
    Url::from_file_path(&path).map_err(|()| format!("{source}: not a usable file path"))
}

fn read_url(url: &Url) -> Result<Vec<u8>, String> {
    match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|()| format!("{url}: not a local file"))?;
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        }
        _ => read_source(url.as_str()),
    }
}

/// Hex SHA-256 of a document.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A referenced document as fetched.
struct Fetched {
    url: Url,
    bytes: Vec<u8>,
    /// The local copy it was read from instead of `url`, if any.
    copy: Option<std::path::PathBuf>,
}

/// Where a local document keeps its copy of an absolute `http(s)` reference: beside it, under
/// `<host>/<path>` (as `wget -x` lays a download out). `None` for anything else.
fn local_copy(root_url: &Url, url: &Url) -> Option<std::path::PathBuf> {
    if root_url.scheme() != "file" || !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let dir = root_url.to_file_path().ok()?.parent()?.to_path_buf();
    let mut path = dir.join(url.host_str()?);
    for segment in url.path_segments()? {
        // Nothing outside the directory: `..` is normalized away by `Url` already, but a
        // percent-encoded one is not.
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains(['/', '\\']) {
            continue;
        }
        path.push(segment);
    }
    path.is_file().then_some(path)
}

/// Fetches every document reachable from `root` through external `$ref`s, by local name.
fn fetch_references(root: &serde_json::Value, root_url: &Url) -> Result<BTreeMap<String, Fetched>, String> {
    let mut fetched: BTreeMap<String, Fetched> = BTreeMap::new();
    let mut queue = vec![(String::new(), root_url.clone(), root.clone())];
    while let Some((from, base, doc)) = queue.pop() {
        for document in external_documents(&doc) {
            let local = local_name(&from, &document);
            let url = base.join(&document).map_err(|e| format!("`{document}` in {base}: {e}"))?;
            if let Some(seen) = fetched.get(&local) {
                if seen.url != url {
                    return Err(format!("{} and {url} would both be kept as `{local}`", seen.url));
                }
                continue;
            }
            // A local document's absolute references are read from copies beside it when
            // there are any, so that a document and its references can be added offline.
            let copy = local_copy(root_url, &url);
            let bytes = match &copy {
                Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
                None => read_url(&url)?,
            };
            let text = std::str::from_utf8(&bytes).map_err(|_| format!("{url}: not UTF-8 text"))?;
            let value = crate::load::parse_text(url.as_str(), text).map_err(|e| e.to_string())?;
            fetched.insert(local.clone(), Fetched { url: url.clone(), bytes, copy });
            queue.push((local, url, value));
        }
    }
    Ok(fetched)
}

/// Fetches the chosen APIs; returns one line per written file.
pub fn run(root: &Path, only: Option<&str>, from: Option<&str>) -> Result<Vec<String>, String> {
    let mut manifest = crate::manifest(root)?;
    let selected: Vec<_> = manifest.apis.iter().filter(|a| only.is_none_or(|n| n == a.name)).cloned().collect();
    if selected.is_empty() {
        return Err(format!("no API named `{}` in openapi/manifest.toml", only.unwrap_or_default()));
    }
    let mut lines = Vec::new();
    for api in selected {
        let source = match from {
            None => api.published.clone(),
            Some(dir) if Path::new(dir).is_dir() => Path::new(dir).join(&api.spec).display().to_string(),
            Some(url) if only.is_some() => url.to_owned(),
            Some(url) => format!("{}/{}", url.trim_end_matches('/'), api.spec),
        };
        let bytes = read_source(&source)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| format!("{source}: not UTF-8 text"))?;
        let file = format!("openapi/{}", api.spec);
        // Refuse anything that is not an OpenAPI document before overwriting the spec.
        let doc = crate::load::parse_text(&source, text).map_err(|e| e.to_string())?;
        crate::load::check_version(&source, &doc).map_err(|e| e.to_string())?;
        // Everything it references is fetched before anything is written.
        let references = fetch_references(&doc, &source_url(&source)?)?;

        std::fs::write(root.join(&file), &bytes).map_err(|e| format!("{file}: {e}"))?;
        let sum = sha256(&bytes);
        lines.push(format!("{}: wrote {file} from {source} (sha256 {sum})", api.name));
        let dir = refs_dir(&root.join(&file));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut sums = BTreeMap::new();
        for (local, fetched) in references {
            let path = dir.join(&local);
            let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, &fetched.bytes).map_err(|e| format!("{shown}: {e}"))?;
            let ref_sum = sha256(&fetched.bytes);
            let from = match &fetched.copy {
                Some(copy) => format!("{} (its copy {})", fetched.url, copy.display()),
                None => fetched.url.to_string(),
            };
            lines.push(format!("{}: wrote {shown} from {from} (sha256 {ref_sum})", api.name));
            sums.insert(local, ref_sum);
        }
        manifest.record_fetch(&api.name, &sum, &sums)?;
    }
    Ok(lines)
}
