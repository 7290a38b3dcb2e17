//! Normalization: an explicit list of rewrites applied to every spec before progenitor sees it.
//!
//! Each rule has a name, the reason it exists, and a unit test on a small fixture spec in
//! `xtask/fixtures/`. Rules work on the document as JSON so that they apply equally to the
//! specs kept here and to the published Vipps MobilePay documents (`cargo xtask fetch`).

use serde_json::{json, Map, Value};

use crate::error::{pointer, SpecError};

/// One normalization rule.
pub struct Rule {
    pub name: &'static str,
    pub reason: &'static str,
    pub apply: fn(&mut Value, &str) -> Result<(), SpecError>,
}

/// The name of the schema every error response is pointed at. The generator replaces it with
/// `vipps_core::Problem`, which reads RFC 7807 bodies and the older Vipps error shapes alike.
pub const PROBLEM_SCHEMA: &str = "VippsProblem";

/// Header parameters the runtime sets on every request; they never appear in method signatures.
pub const MANAGED_HEADERS: &[&str] = &[
    "authorization",
    "ocp-apim-subscription-key",
    "merchant-serial-number",
    "psp-id",
    "client_id",
    "client_secret",
    "content-type",
    "accept",
];

/// Every rule, in the order applied.
pub const RULES: &[Rule] = &[
    Rule {
        name: "drop-pseudo-paths",
        reason: "Published documents model callbacks (which Vipps sends to the merchant or PSP) as \
                 fake paths such as `[ makePaymentUrl ]`; they are not client operations, and \
                 progenitor rejects the path template. Their schemas stay in `components`.",
        apply: drop_pseudo_paths,
    },
    Rule {
        name: "drop-callbacks",
        reason: "Callback objects describe requests the merchant's own server receives. progenitor \
                 only writes clients; the callback bodies are generated as types from `components`.",
        apply: drop_callbacks,
    },
    Rule {
        name: "strip-managed-headers",
        reason: "Authorization, Ocp-Apim-Subscription-Key, Merchant-Serial-Number, Psp-Id, the \
                 client credentials and Vipps-System-* are set by vipps-core from the shared \
                 configuration and token cache, per request; as method arguments they would let \
                 callers send stale tokens or forget the system headers.",
        apply: strip_managed_headers,
    },
    Rule {
        name: "optional-idempotency-key",
        reason: "vipps-core generates an Idempotency-Key when the caller gives none and reuses it \
                 on every retry of the call, so the parameter is optional in the generated API.",
        apply: optional_idempotency_key,
    },
    Rule {
        name: "json-media-types",
        reason: "progenitor types only `application/json`; `application/problem+json`, \
                 `application/*+json` and `application/json;charset=UTF-8` bodies would become \
                 untyped bytes.",
        apply: json_media_types,
    },
    Rule {
        name: "one-request-media-type",
        reason: "progenitor accepts one request media type per operation (it panics on more); JSON \
                 is kept when offered, otherwise the first one listed.",
        apply: one_request_media_type,
    },
    Rule {
        name: "errors-as-problem",
        reason: "progenitor asserts that all error responses of an operation share one body kind \
                 (`response_types.len() <= 1`), but Vipps documents mix problem+json, other JSON \
                 shapes and bodiless 401/5xx answers. The error responses are merged into `4XX` \
                 and `5XX` ranges (their descriptions kept) pointing at one problem schema, which \
                 the generator replaces by `vipps_core::Problem`; it keeps every field, and the \
                 runtime turns non-JSON error bodies into problems, keeping the text. `default` \
                 is merged into both: progenitor counts `default` as a possible success too, which \
                 breaks the same assertion next to a typed 2xx response. Ranges only, because \
                 progenitor matches ranges before codes and would leave codes unreachable. An \
                 operation documenting no 4xx or no 5xx gets that range too: the services answer \
                 every error with a body, and without a range progenitor returns an untyped \
                 `Error<()>` whose body nobody can read.",
        apply: errors_as_problem,
    },
    Rule {
        name: "fold-success-responses",
        reason: "The same assertion holds for success responses: an operation answering both with \
                 a body and without one (202 with a body, 204 without) cannot be generated. Such \
                 operations keep the JSON response for every success status, typed as an \
                 optional value so that an empty body is accepted.",
        apply: fold_success_responses,
    },
    Rule {
        name: "string-enums",
        reason: "typify fails with \"unexpected value type\" on a non-string value in a string \
                 enum; YAML 1.1 tools read Norway's country code `NO` as `false`, and the \
                 published Recurring document carries such a value (`countryCode`). Such a value \
                 becomes the first YAML 1.1 spelling of it that fits the schema's `pattern`, or is \
                 dropped. typify also drops enum values that fail the `pattern` silently, so \
                 `pattern` is removed from enums (the values constrain it already), and a \
                 `default` that is not one of the values is removed.",
        apply: string_enums,
    },
    Rule {
        name: "nullable-component-schemas",
        reason: "For a nullable component schema, typify emits a wrapper `Name(Option<…>)` and an \
                 inner type, and names both after the schema's `title` when it equals the schema \
                 name (Order Management's `CategoryEnum`, Management's `Address`): two types of \
                 one name do not compile. The component loses `nullable`, and every reference to \
                 it becomes `allOf: [$ref], nullable: true`, so the fields stay optional.",
        apply: nullable_component_schemas,
    },
];

/// Applies every rule in order.
pub fn normalize(doc: &mut Value, file: &str) -> Result<(), SpecError> {
    normalize_except(doc, file, &[])
}

/// Applies every rule but those named in `skip` (tests use it to show what a rule prevents).
pub fn normalize_except(doc: &mut Value, file: &str, skip: &[&str]) -> Result<(), SpecError> {
    for rule in RULES.iter().filter(|r| !skip.contains(&r.name)) {
        (rule.apply)(doc, file)?;
    }
    Ok(())
}

/// The HTTP methods a path item may hold.
pub const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Calls `f` for every operation with its JSON pointer.
fn for_each_operation(
    doc: &mut Value,
    mut f: impl FnMut(&str, &mut Map<String, Value>) -> Result<(), SpecError>,
) -> Result<(), SpecError> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for method in METHODS {
            if let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) {
                f(&pointer(["paths", path.as_str(), method]), op)?;
            }
        }
    }
    Ok(())
}

/// Resolves a local `$ref` (`#/components/...`) to the value it points at.
pub fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => doc.pointer(&r[1..]).unwrap_or(v),
        _ => v,
    }
}

fn drop_pseudo_paths(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|path, _| path.starts_with('/'));
    }
    Ok(())
}

fn drop_callbacks(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    for_each_operation(doc, |_, op| {
        op.remove("callbacks");
        Ok(())
    })
}

fn is_managed_header(param: &Value) -> bool {
    if param.get("in").and_then(Value::as_str) != Some("header") {
        return false;
    }
    let name = param.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    MANAGED_HEADERS.contains(&name.as_str()) || name.starts_with("vipps-system-")
}

fn strip_managed_headers(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let snapshot = doc.clone();
    let strip = |params: &mut Value| {
        if let Some(list) = params.as_array_mut() {
            list.retain(|p| !is_managed_header(resolve(&snapshot, p)));
        }
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            if let Some(params) = item.get_mut("parameters") {
                strip(params);
            }
            for method in METHODS {
                if let Some(params) = item.get_mut(*method).and_then(|op| op.get_mut("parameters")) {
                    strip(params);
                }
            }
        }
    }
    Ok(())
}

fn is_idempotency_key(param: &Value) -> bool {
    param.get("in").and_then(Value::as_str) == Some("header")
        && param.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
}

fn optional_idempotency_key(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    // Shared definitions under components/parameters, then inline ones.
    if let Some(params) = doc.pointer_mut("/components/parameters").and_then(Value::as_object_mut) {
        for p in params.values_mut() {
            if is_idempotency_key(p) {
                p["required"] = Value::Bool(false);
            }
        }
    }
    for_each_operation(doc, |_, op| {
        if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for p in list.iter_mut().filter(|p| is_idempotency_key(p)) {
                p["required"] = Value::Bool(false);
            }
        }
        Ok(())
    })
}

fn is_json_like(media: &str) -> bool {
    let base = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    base == "application/json" || (base.starts_with("application/") && base.ends_with("+json"))
}

/// Renames JSON-like media types of one `content` map to `application/json`, keeping the first.
fn unify_json_content(content: &mut Value) {
    let Some(map) = content.as_object_mut() else { return };
    if !map.keys().any(|k| is_json_like(k) && k != "application/json") {
        return;
    }
    let old = std::mem::take(map);
    for (k, v) in old {
        if is_json_like(&k) {
            map.entry("application/json".to_owned()).or_insert(v);
        } else {
            map.insert(k, v);
        }
    }
}

fn json_media_types(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let mut visit = |v: &mut Value| {
        if let Some(content) = v.get_mut("content") {
            unify_json_content(content);
        }
    };
    for section in ["responses", "requestBodies"] {
        if let Some(map) = doc.pointer_mut(&format!("/components/{section}")).and_then(Value::as_object_mut) {
            map.values_mut().for_each(&mut visit);
        }
    }
    for_each_operation(doc, |_, op| {
        if let Some(body) = op.get_mut("requestBody") {
            visit(body);
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            responses.values_mut().for_each(&mut visit);
        }
        Ok(())
    })
}

fn one_request_media_type(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let keep_one = |body: &mut Value| {
        let Some(map) = body.get_mut("content").and_then(Value::as_object_mut) else { return };
        if map.len() <= 1 {
            return;
        }
        let keep = if map.contains_key("application/json") {
            "application/json".to_owned()
        } else {
            map.keys().next().cloned().unwrap_or_default()
        };
        map.retain(|k, _| *k == keep);
    };
    if let Some(map) = doc.pointer_mut("/components/requestBodies").and_then(Value::as_object_mut) {
        map.values_mut().for_each(keep_one);
    }
    for_each_operation(doc, |_, op| {
        if let Some(body) = op.get_mut("requestBody") {
            keep_one(body);
        }
        Ok(())
    })
}

fn is_error_status(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5')
}

fn errors_as_problem(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let mut used = false;
    let snapshot = doc.clone();
    for_each_operation(doc, |_, op| {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        // Error class ('4' or '5') -> the documented codes and what they mean.
        let mut classes: std::collections::BTreeMap<char, Vec<String>> = Default::default();
        let codes: Vec<String> = responses.keys().filter(|c| is_error_status(c) || *c == "default").cloned().collect();
        for code in codes {
            let response = responses.remove(&code).expect("listed above");
            let description = resolve(&snapshot, &response)
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned();
            let targets: &[char] = if code == "default" { &['4', '5'] } else if code.starts_with('4') { &['4'] } else { &['5'] };
            for class in targets {
                let line = if description.is_empty() { code.clone() } else { format!("{code}: {description}") };
                classes.entry(*class).or_default().push(line);
            }
        }
        for class in ['4', '5'] {
            classes
                .entry(class)
                .or_insert_with(|| vec![format!("{class}xx: not documented for this operation; read as problem details like every other error")]);
        }
        for (class, lines) in classes {
            responses.insert(
                format!("{class}XX"),
                json!({
                    "description": lines.join("\n"),
                    "content": { "application/json": { "schema": {
                        "$ref": format!("#/components/schemas/{PROBLEM_SCHEMA}")
                    } } }
                }),
            );
            used = true;
        }
        Ok(())
    })?;
    if used {
        let schemas = doc
            .as_object_mut()
            .expect("an OpenAPI document is an object")
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|c| c.entry("schemas").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        if let Some(schemas) = schemas {
            schemas.insert(
                PROBLEM_SCHEMA.to_owned(),
                json!({
                    "type": "object",
                    "description": "An error answer from the API, read by vipps-core.",
                }),
            );
        }
    }
    Ok(())
}

/// The kind progenitor gives a response: JSON body, other body, or none.
fn body_kind(doc: &Value, response: &Value) -> &'static str {
    let response = resolve(doc, response);
    match response.get("content").and_then(Value::as_object) {
        Some(c) if c.contains_key("application/json") => "json",
        Some(c) if !c.is_empty() => "raw",
        _ => "none",
    }
}

fn fold_success_responses(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let snapshot = doc.clone();
    for_each_operation(doc, |_, op| {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let success: Vec<String> = responses.keys().filter(|c| c.starts_with('2')).cloned().collect();
        let kinds: std::collections::BTreeSet<_> =
            success.iter().map(|c| body_kind(&snapshot, &responses[c])).collect();
        if kinds.len() <= 1 {
            return Ok(());
        }
        // The JSON schema shared by the success responses, made nullable so an empty body fits.
        let schema = success
            .iter()
            .find_map(|c| resolve(&snapshot, &responses[c]).pointer("/content/application~1json/schema").cloned());
        let Some(schema) = schema else { return Ok(()) };
        for code in &success {
            let description = resolve(&snapshot, &responses[code])
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("Success")
                .to_owned();
            responses[code] = json!({
                "description": description,
                "content": { "application/json": { "schema": {
                    "allOf": [schema.clone()], "nullable": true
                } } }
            });
        }
        Ok(())
    })
}

/// Walks every schema object below `v`, with its JSON pointer.
fn walk_schemas(v: &mut Value, ptr: &str, f: &mut dyn FnMut(&str, &mut Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            f(ptr, map);
            for (k, child) in map.iter_mut() {
                walk_schemas(child, &format!("{ptr}/{}", crate::error::escape(k)), f);
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter_mut().enumerate() {
                walk_schemas(child, &format!("{ptr}/{i}"), f);
            }
        }
        _ => {}
    }
}

/// YAML 1.1 spellings of booleans, in the order tried.
const YAML11_FALSE: &[&str] = &["NO", "No", "no", "N", "n", "OFF", "Off", "off", "FALSE", "False", "false"];
const YAML11_TRUE: &[&str] = &["YES", "Yes", "yes", "Y", "y", "ON", "On", "on", "TRUE", "True", "true"];

fn string_enums(doc: &mut Value, file: &str) -> Result<(), SpecError> {
    let mut failure = None;
    walk_schemas(doc, "", &mut |ptr, map| {
        let is_string = map.get("type").and_then(Value::as_str) == Some("string");
        let Some(values) = map.get("enum").and_then(Value::as_array).cloned() else { return };
        let pattern = map.get("pattern").and_then(Value::as_str).map(str::to_owned);
        if is_string {
            let regex = match pattern.as_deref().map(regress::Regex::new).transpose() {
                Ok(r) => r,
                Err(e) => {
                    failure.get_or_insert_with(|| SpecError::new(file, format!("{ptr}/pattern"), format!("invalid pattern: {e}")));
                    return;
                }
            };
            let fits = |s: &str| regex.as_ref().is_none_or(|r| r.find(s).is_some());
            let fixed: Vec<Value> = values
                .iter()
                .filter_map(|v| match v {
                    Value::String(_) | Value::Null => Some(v.clone()),
                    Value::Bool(b) => {
                        let spellings = if *b { YAML11_TRUE } else { YAML11_FALSE };
                        regex.as_ref()?;
                        spellings.iter().find(|s| fits(s)).map(|s| Value::String((*s).to_owned()))
                    }
                    Value::Number(n) => Some(Value::String(n.to_string())),
                    _ => None,
                })
                .collect();
            if fixed.iter().all(Value::is_null) {
                map.remove("enum");
            } else {
                map.insert("enum".into(), Value::Array(fixed));
            }
            map.remove("pattern");
        }
        if let (Some(default), Some(values)) = (map.get("default"), map.get("enum").and_then(Value::as_array)) {
            if !values.contains(default) {
                map.remove("default");
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

fn nullable_component_schemas(doc: &mut Value, _file: &str) -> Result<(), SpecError> {
    let mut names = Vec::new();
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            let Some(map) = schema.as_object_mut() else { continue };
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                names.push(format!("#/components/schemas/{name}"));
            }
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    fn wrap(v: &mut Value, names: &[String]) {
        match v {
            Value::Object(map) => {
                let target = map.get("$ref").and_then(Value::as_str).map(str::to_owned);
                if let Some(target) = target.filter(|t| names.contains(t)) {
                    let mut rest = std::mem::take(map);
                    rest.remove("$ref");
                    rest.insert("allOf".into(), json!([{ "$ref": target }]));
                    rest.insert("nullable".into(), Value::Bool(true));
                    *map = rest;
                    return;
                }
                map.values_mut().for_each(|c| wrap(c, names));
            }
            Value::Array(list) => list.iter_mut().for_each(|c| wrap(c, names)),
            _ => {}
        }
    }
    wrap(doc, &names);
    Ok(())
}

/// CamelCase of a spec name (`order-management` → `OrderManagement`).
pub fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}
