//! `cargo xtask fetch`: replaces a spec with the published document and records its checksum,
//! so that `git diff openapi/` shows how the spec kept here differs from the published one.

use std::path::Path;

use sha2::{Digest, Sha256};

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

/// Hex SHA-256 of a document.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches the chosen APIs; returns one line per API saying what was written.
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
        std::fs::write(root.join(&file), &bytes).map_err(|e| format!("{file}: {e}"))?;
        let sum = sha256(&bytes);
        manifest.set_sha256(&api.name, &sum)?;
        lines.push(format!("{}: wrote {file} from {source} (sha256 {sum})", api.name));
    }
    Ok(lines)
}
