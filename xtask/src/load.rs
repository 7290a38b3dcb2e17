//! Reading a spec: YAML or JSON text into a JSON tree, then into `openapiv3` types, with every
//! failure located by file and JSON pointer.

use serde_json::Value;

use crate::error::{pointer, SpecError};

/// Parses YAML or JSON text (JSON is YAML) into a JSON tree.
pub fn parse_text(file: &str, text: &str) -> Result<Value, SpecError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
        SpecError::new(file, "", format!("not a YAML or JSON document{at}: {e}"))
    })?;
    if !value.is_object() {
        return Err(SpecError::new(file, "", "not an OpenAPI document: the top level is not a mapping"));
    }
    Ok(value)
}

/// Requires `openapi: 3.0.x`, the only version progenitor reads.
pub fn check_version(file: &str, doc: &Value) -> Result<(), SpecError> {
    match doc.get("openapi") {
        Some(Value::String(v)) if v.trim().starts_with("3.0.") => Ok(()),
        Some(Value::String(v)) => Err(SpecError::new(
            file,
            "/openapi",
            format!("OpenAPI {v} is not supported: only 3.0.x can be generated"),
        )),
        Some(other) => Err(SpecError::new(file, "/openapi", format!("expected a version string, found {other}"))),
        None if doc.get("swagger").is_some() => {
            Err(SpecError::new(file, "/swagger", "Swagger 2.0 is not supported: only OpenAPI 3.0.x"))
        }
        None => Err(SpecError::new(file, "", "not an OpenAPI document: no `openapi` field")),
    }
}

/// Converts the JSON tree into the typed document, naming the pointer of the first mismatch.
pub fn to_openapi(file: &str, doc: &Value) -> Result<openapiv3::OpenAPI, SpecError> {
    typed::<openapiv3::OpenAPI>(file, "", doc).map_err(|whole| locate(file, doc).unwrap_or(whole))
}

/// openapiv3's structs flatten their extensions, which hides the path below them from
/// serde_path_to_error; parsing the parts one by one finds the failing one.
fn locate(file: &str, doc: &Value) -> Option<SpecError> {
    use openapiv3::{Operation, Parameter, ReferenceOr, RequestBody, Response, Schema};
    for (path, item) in doc.get("paths")?.as_object()? {
        for method in crate::normalize::METHODS {
            let Some(op) = item.get(*method) else { continue };
            let at = pointer(["paths", path.as_str(), *method]);
            if typed::<Operation>(file, &at, op).is_ok() {
                continue;
            }
            for (i, p) in op.get("parameters").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if let Err(e) = typed::<ReferenceOr<Parameter>>(file, &format!("{at}/parameters/{i}"), p) {
                    return Some(e);
                }
            }
            if let Some(body) = op.get("requestBody") {
                if let Err(e) = typed::<ReferenceOr<RequestBody>>(file, &format!("{at}/requestBody"), body) {
                    return Some(e);
                }
            }
            match op.get("responses") {
                Some(Value::Object(responses)) => {
                    for (code, r) in responses {
                        let here = format!("{at}/responses/{}", crate::error::escape(code));
                        if let Err(e) = typed::<ReferenceOr<Response>>(file, &here, r) {
                            return Some(e);
                        }
                    }
                }
                Some(other) => {
                    return Some(SpecError::new(file, format!("{at}/responses"), format!("not a valid OpenAPI 3.0 document: expected a map of responses, found {other}")))
                }
                None => {}
            }
            return typed::<Operation>(file, &at, op).err();
        }
    }
    for (name, schema) in doc.pointer("/components/schemas").and_then(Value::as_object).into_iter().flatten() {
        if let Err(e) = typed::<ReferenceOr<Schema>>(file, &pointer(["components", "schemas", name.as_str()]), schema) {
            return Some(e);
        }
    }
    None
}

fn typed<T: serde::de::DeserializeOwned>(file: &str, at: &str, value: &Value) -> Result<T, SpecError> {
    let de = value.clone();
    serde_path_to_error::deserialize(de).map_err(|e: serde_path_to_error::Error<serde_json::Error>| {
        let tokens: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        SpecError::new(file, format!("{at}{}", pointer(tokens)), format!("not a valid OpenAPI 3.0 document: {}", e.inner()))
    })
}
