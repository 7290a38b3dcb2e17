//! Constructs progenitor cannot generate, reported with their JSON pointer before generation
//! (progenitor itself would panic or fail without saying where).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{pointer, SpecError};

use crate::normalize::{resolve, METHODS};

/// snake_case as progenitor names methods, to find operationIds that would clash.
fn snake(id: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in id.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out
}

/// Checks the normalized document for constructs the generator does not support.
pub fn unsupported(file: &str, doc: &Value) -> Result<(), SpecError> {
    let err = |tokens: Vec<&str>, msg: String| Err(SpecError::new(file, pointer(tokens), msg));
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return err(vec!["paths"], "the document has no `paths` object".into());
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            return err(vec!["paths", path], format!("`{path}` is not a path: paths start with `/`"));
        }
        if item.get("$ref").is_some() {
            return err(vec!["paths", path, "$ref"], "path items given by reference are not supported".into());
        }
        for method in METHODS {
            let Some(op) = item.get(*method) else { continue };
            let here = |rest: &[&str]| -> Vec<String> {
                let mut v = vec!["paths".to_owned(), path.clone(), (*method).to_owned()];
                v.extend(rest.iter().map(|s| s.to_string()));
                v
            };
            let fail = |rest: &[&str], msg: String| Err(SpecError::new(file, pointer(here(rest)), msg));
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                return fail(&[], "operation has no operationId; every operation needs one to become a method".into());
            };
            if let Some(other) = seen.insert(snake(id), pointer(here(&[]))) {
                return fail(&["operationId"], format!("operationId `{id}` gives the same method name as {other}"));
            }
            let params = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten());
            for (i, p) in params.enumerate() {
                let p = resolve(doc, p);
                let location = p.get("in").and_then(Value::as_str).unwrap_or("");
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let at = format!("{i}");
                match location {
                    "cookie" => return fail(&["parameters", &at], format!("cookie parameter `{name}` is not supported")),
                    "path" if p.get("required") != Some(&Value::Bool(true)) => {
                        return fail(&["parameters", &at], format!("path parameter `{name}` must be required"))
                    }
                    "path" | "header" | "query" => {}
                    other => return fail(&["parameters", &at], format!("unknown parameter location `{other}`")),
                }
                if p.get("content").is_some() {
                    return fail(&["parameters", &at], format!("parameter `{name}` uses `content`; only `schema` is supported"));
                }
                let style = p.get("style").and_then(Value::as_str);
                let ok_style = match location {
                    "path" | "header" => matches!(style, None | Some("simple")),
                    _ => matches!(style, None | Some("form")),
                };
                if !ok_style {
                    return fail(&["parameters", &at], format!("parameter `{name}` has unsupported style {style:?}"));
                }
            }
            if let Some(body) = op.get("requestBody").map(|b| resolve(doc, b)) {
                let content = body.get("content").and_then(Value::as_object);
                match content {
                    Some(c) if c.len() == 1 => {
                        let (media, mt) = c.iter().next().expect("one entry");
                        let base = media.split(';').next().unwrap_or("");
                        let known = ["application/json", "application/octet-stream", "application/x-www-form-urlencoded", "text/plain"];
                        if !known.contains(&base) {
                            return fail(&["requestBody", "content", media], format!("request media type `{media}` is not supported"));
                        }
                        if mt.get("schema").is_none() {
                            return fail(&["requestBody", "content", media], "request body has no schema".into());
                        }
                    }
                    _ => return fail(&["requestBody", "content"], "a request body needs exactly one media type".into()),
                }
            }
            let responses = op.get("responses").and_then(Value::as_object);
            let Some(responses) = responses else {
                return fail(&["responses"], "operation has no responses".into());
            };
            let mut kinds: BTreeMap<bool, (String, String)> = BTreeMap::new();
            for (code, r) in responses {
                let valid = code == "default"
                    || (code.len() == 3 && (code.chars().all(|c| c.is_ascii_digit()) || code[1..].eq_ignore_ascii_case("xx")));
                if !valid {
                    return fail(&["responses", code], format!("`{code}` is not a status code"));
                }
                let r = resolve(doc, r);
                let kind = match r.get("content").and_then(Value::as_object) {
                    Some(c) if c.contains_key("application/json") => {
                        let mt = &c["application/json"];
                        if mt.get("schema").is_none() {
                            return fail(&["responses", code, "content", "application/json"], "JSON response without a schema".into());
                        }
                        if mt.get("encoding").is_some() {
                            return fail(&["responses", code, "content", "application/json", "encoding"], "response encodings are not supported".into());
                        }
                        format!("json:{}", mt["schema"])
                    }
                    Some(c) if !c.is_empty() => "raw".to_owned(),
                    _ => "none".to_owned(),
                };
                // progenitor counts `default` among both the success and the error responses.
                let classes: &[bool] = match code.as_bytes()[0] {
                    b'2' => &[true],
                    b'4' | b'5' => &[false],
                    b'd' => &[true, false],
                    _ => &[],
                };
                for &success in classes {
                    if let Some((other_code, other_kind)) = kinds.get(&success) {
                        if *other_kind != kind {
                            let what = if success { "success" } else { "error" };
                            return fail(
                                &["responses", code],
                                format!("{what} responses {other_code} and {code} have different bodies; progenitor needs one body type for all {what} responses"),
                            );
                        }
                    } else {
                        kinds.insert(success, (code.clone(), kind.clone()));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::snake;

    #[test]
    fn snake_matches_progenitor_method_names() {
        assert_eq!(snake("ListAgreementsV3"), "list_agreements_v3");
        assert_eq!(snake("acceptUsingPATCHV3"), "accept_using_patchv3");
        assert_eq!(snake("put-category-v2"), "put_category_v2");
    }
}
