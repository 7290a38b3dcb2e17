//! Normalization: an explicit list of rewrites applied to every spec before progenitor sees it.
//!
//! Each rule has a name, the reason it exists, and a unit test on a small fixture spec in
//! `xtask/fixtures/`. Rules work on the document as JSON so that they apply equally to the
//! specs kept here and to the published Vipps MobilePay documents (`cargo xtask fetch`).

use serde_json::{json, Map, Value};

use crate::bundle::{NoRefs, RefSource};
use crate::error::{pointer, SpecError};

/// One normalization rule.
pub struct Rule {
    /// The rule's name, used to skip it in tests.
    pub name: &'static str,
    /// Why the rule exists: what goes wrong without it.
    pub reason: &'static str,
    /// Rewrites the document in place.
    pub apply: fn(&mut Value, &Context) -> Result<(), SpecError>,
}

/// What a rule may need besides the document.
pub struct Context<'a> {
    /// The spec file, for error locations.
    pub file: &'a str,
    /// The documents external `$ref`s point at (see [`crate::bundle`]).
    pub refs: &'a dyn RefSource,
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
                 progenitor rejects the path template. Their schemas stay in `components`. This \
                 runs first, so that `bundle-refs` does not resolve them: eCom keeps such path \
                 items in fragment files whose `#/components/...` references mean the including \
                 document's components, which do not resolve in the fragment.",
        apply: drop_pseudo_paths,
    },
    Rule {
        name: "bundle-refs",
        reason: "progenitor reads one document and resolves only `#/components/...` references: \
                 an external `$ref` (ePayment's receipt types point into Order Management's \
                 published document by a relative URL) or a path item given by `$ref` (eCom) \
                 stops generation. The referenced documents, fetched beside the spec by \
                 `cargo xtask fetch`, are copied in: components under their own names (suffixed \
                 when the name is taken), anything else in place of the reference.",
        apply: bundle_refs,
    },
    Rule {
        name: "synthesize-operation-ids",
        reason: "Every generated method is named after its operationId, and progenitor cannot \
                 generate an operation without one; the published Webhooks, Checkout and Report \
                 documents have such operations. The id is made from the method and the path as \
                 written (before `fold-server-path`): `get` + each segment in camelCase, a \
                 `{param}` segment as `By<Param>` (`GET /v1/webhooks/{id}` → `getV1WebhooksById`). \
                 When that gives the same method name as another operation, `2`, `3`, ... is \
                 appended, so an id never collides with one the document declares.",
        apply: synthesize_operation_ids,
    },
    Rule {
        name: "fold-server-path",
        reason: "The runtime supplies the host (production, test or a custom base URL) and \
                 progenitor ignores `servers`, so a path in the first server URL \
                 (`https://api.vipps.no/qr/v1` for QR, Check-in, Webhooks) would be lost and the \
                 client would call the wrong URL. That path (variables replaced by their \
                 defaults) is prefixed to every path (`/merchant-redirect` → \
                 `/qr/v1/merchant-redirect`), and removed from the server URLs that carry it.",
        apply: fold_server_path,
    },
    Rule {
        name: "hoist-path-parameters",
        reason: "Parameters declared on a path item apply to each of its operations. progenitor \
                 merges them, but the rules that follow and the operation descriptors read only \
                 the operation's own list: ePayment declares `Idempotency-Key` on path items, \
                 and the runtime neither generated a key nor retried those POSTs. Each \
                 operation gets a copy of the path item's parameters it does not declare itself \
                 (same `name` and `in`: the operation's wins), and the path item loses its list.",
        apply: hoist_path_parameters,
    },
    Rule {
        name: "keep-non-json-accept",
        reason: "`Accept` is a managed header for JSON operations (progenitor sets \
                 `application/json` itself), but an operation that offers other media types \
                 (QR codes as `image/png`, `image/svg+xml` or `text/targetUrl`) lets the caller \
                 choose with it; stripping it would leave only the server's default format. \
                 Such an `Accept` parameter is kept (marked `x-vipps-caller-header`, which \
                 `strip-managed-headers` respects). The non-JSON bodies themselves are kept as \
                 written: progenitor 0.15.1 gives a response without a JSON media type as \
                 `ResponseValue<ByteStream>` (bytes, also for `text/plain`), and a `text/plain` \
                 request body as a `String`, whose schema it requires to be a bare \
                 `type: string`; constraints on such a schema are dropped so that it generates.",
        apply: keep_non_json_accept,
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
        name: "anchor-character-class-patterns",
        reason: "A JSON Schema `pattern` is unanchored: it needs only to match somewhere in the \
                 value. PSP's `pspTransactionId` has `pattern: \"[a-z0-9]\"`, which every value \
                 with one lowercase letter or digit matches (`\"ABC def\"` passed), while the \
                 document means the characters the id is made of. A pattern that is a single \
                 character class, alone or with a quantifier, is therefore anchored to the whole \
                 value: `[a-z0-9]` becomes `^[a-z0-9]+$` (`+`, or `*` when the schema allows an \
                 empty value with `minLength: 0`), `[a-z]{1,5}` becomes `^[a-z]{1,5}$`. Other \
                 unanchored patterns keep their search meaning.",
        apply: anchor_character_class_patterns,
    },
    Rule {
        name: "unsigned-integers",
        reason: "Integers the document bounds below by zero or more (amounts in minor units, counts, \
                 retry days) were signed `i32`/`i64`, a `minimum: 1` became typify's `NonZeroU32`, \
                 which an integer literal cannot convert to (`.count(1)` did not compile), and the \
                 same amount was unsigned in a request and signed in the response (Recurring's \
                 `pricing.amount`). Such integers, and integer properties named as money \
                 (`amount`, `price`, `…Price`, any name with `Amount` in it, and a charge summary's `captured`, \
                 `refunded`, `cancelled`, `authorized`) that no bound makes negative, get the \
                 unsigned format of their width (`int32` -> `uint32`, `int64` or none -> \
                 `uint64`); an `int32` without a maximum gets `i32::MAX` as its maximum, since \
                 the API reads no more than that. A property's lower bound of exactly one is \
                 dropped by `range-notes` once recorded, so the field is a plain `u32`/`u64` \
                 whose range check still refuses zero before sending; elsewhere (parameters, \
                 which have no range check) the bound of one is dropped here and left to the API.",
        apply: unsigned_integers,
    },
    Rule {
        name: "range-notes",
        reason: "typify checks string length and pattern but generates a plain integer for \
                 `minimum`/`maximum`, so a Recurring charge of 99 øre (`minimum: 100`) was built, \
                 sent and refused by the API. For each integer property with bounds, the rule \
                 appends a note `x-vipps-range: MIN..=MAX` to the property's description, which \
                 typify carries to the field's doc comment; the generator (`range_checks`) \
                 removes the note and gives the field serde functions that check the bounds on \
                 deserialization and on serialization, so a value out of range is refused before \
                 anything is sent. (`exclusiveMinimum`/`exclusiveMaximum` narrow the bound by \
                 one.) Query and path parameters are left to progenitor.",
        apply: range_notes,
    },
    Rule {
        name: "dates-by-example",
        reason: "Some dates are plain strings in the documents, with only their example showing the \
                 form (Recurring's `due` on a new charge), while the same date in a response has \
                 `format: date`: a user wrote `.due(date.to_string())`, and a malformed date was \
                 only refused by the API. A string schema with no format, pattern or enum whose \
                 example is a calendar date (`YYYY-MM-DD`) gets `format: date`, which typify makes \
                 a `chrono::NaiveDate`.",
        apply: dates_by_example,
    },
    Rule {
        name: "plain-response-ids",
        reason: "The documents constrain the same identifier differently in each response \
                 (Recurring's agreement id is a plain string in one, `maxLength: 36` in another), \
                 so typify gave one id a different type on every response (`String`, \
                 `AgreementResponseV3Id`, `DraftAgreementResponseV3ChargeId`) and a user could not \
                 compare or pass them without conversions; a length the service outgrows would \
                 also make a good answer unreadable. An id the service assigns needs no checking \
                 by the client: in component schemas no request body reaches, a string property \
                 named `id` or `…Id` loses its pattern and length bounds and is a `String` like \
                 the path parameters it is passed to. Ids in requests keep their checks.",
        apply: plain_response_ids,
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

/// Applies every rule in order, for a spec without external references.
pub fn normalize(doc: &mut Value, file: &str) -> Result<(), SpecError> {
    normalize_except(doc, file, &[])
}

/// Applies every rule but those named in `skip` (tests use it to show what a rule prevents),
/// for a spec without external references.
pub fn normalize_except(doc: &mut Value, file: &str, skip: &[&str]) -> Result<(), SpecError> {
    normalize_with(doc, &Context { file, refs: &NoRefs }, skip)
}

/// Applies every rule but those named in `skip`, reading referenced documents from `cx.refs`.
pub fn normalize_with(doc: &mut Value, cx: &Context, skip: &[&str]) -> Result<(), SpecError> {
    for rule in RULES.iter().filter(|r| !skip.contains(&r.name)) {
        (rule.apply)(doc, cx)?;
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

fn bundle_refs(doc: &mut Value, cx: &Context) -> Result<(), SpecError> {
    crate::bundle::bundle(doc, cx.file, cx.refs)
}

/// The operationId `synthesize-operation-ids` gives an operation: the lowercase method, then
/// each path segment in CamelCase, a `{param}` as `By<Param>` (`get`, `/v1/merchant-redirect/{id}`
/// → `getV1MerchantRedirectById`).
pub fn synthesized_operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let mut rest = segment;
        while !rest.is_empty() {
            match (rest.find('{'), rest.find('}')) {
                (Some(0), Some(end)) => {
                    id.push_str("By");
                    id.push_str(&camel(&rest[1..end]));
                    rest = &rest[end + 1..];
                }
                (Some(start), _) => {
                    id.push_str(&camel(&rest[..start]));
                    rest = &rest[start..];
                }
                _ => {
                    id.push_str(&camel(rest));
                    rest = "";
                }
            }
        }
    }
    id
}

fn synthesize_operation_ids(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    let mut taken = std::collections::BTreeSet::new();
    for_each_operation(doc, |_, op| {
        if let Some(id) = op.get("operationId").and_then(Value::as_str) {
            taken.insert(crate::generate::method_name(id));
        }
        Ok(())
    })?;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) else { continue };
            if op.get("operationId").and_then(Value::as_str).is_some_and(|id| !id.is_empty()) {
                continue;
            }
            let base = synthesized_operation_id(method, path);
            let id = std::iter::once(base.clone())
                .chain((2..).map(|n| format!("{base}{n}")))
                .find(|id| !taken.contains(&crate::generate::method_name(id)))
                .expect("some number is free");
            taken.insert(crate::generate::method_name(&id));
            op.insert("operationId".into(), Value::String(id));
        }
    }
    Ok(())
}

/// The path of a server URL with its variables replaced by their defaults, without a trailing
/// slash (`https://api.vipps.no/qr/v1/` → `/qr/v1`; `https://api.vipps.no` → ``).
fn server_path(server: &Value) -> String {
    let mut url = server.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            let default = var.get("default").and_then(Value::as_str).unwrap_or_default();
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    let path = match url::Url::parse(&url) {
        Ok(parsed) => parsed.path().to_owned(),
        // A relative server URL (`/qr/v1`) is a path already.
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    };
    path.trim_end_matches('/').to_owned()
}

fn fold_server_path(doc: &mut Value, cx: &Context) -> Result<(), SpecError> {
    let Some(first) = doc.pointer("/servers/0").cloned() else { return Ok(()) };
    let prefix = server_path(&first);
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.starts_with('/') {
        return Err(SpecError::new(cx.file, "/servers/0/url", format!("cannot read a path from server URL `{}`", first["url"])));
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let old = std::mem::take(paths);
        for (path, item) in old {
            paths.insert(format!("{prefix}{path}"), item);
        }
    }
    if let Some(servers) = doc.get_mut("servers").and_then(Value::as_array_mut) {
        for server in servers.iter_mut() {
            if server_path(server) == prefix {
                if let Some(Value::String(url)) = server.get_mut("url") {
                    let trimmed = url.trim_end_matches('/');
                    *url = trimmed.strip_suffix(prefix.as_str()).unwrap_or(trimmed).to_owned();
                }
            }
        }
    }
    Ok(())
}

/// `(in, name)` of a parameter, to match an operation's parameter with a path item's.
fn parameter_key(doc: &Value, param: &Value) -> (String, String) {
    let p = resolve(doc, param);
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let location = field("in");
    // Header names are case-insensitive.
    let name = if location == "header" { field("name").to_ascii_lowercase() } else { field("name") };
    (location, name)
}

fn hoist_path_parameters(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    let snapshot = doc.clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        let Some(Value::Array(shared)) = item.remove("parameters") else { continue };
        for method in METHODS {
            let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) else { continue };
            let list = op.entry("parameters").or_insert_with(|| Value::Array(Vec::new()));
            let Some(list) = list.as_array_mut() else { continue };
            let own: Vec<_> = list.iter().map(|p| parameter_key(&snapshot, p)).collect();
            let inherited = shared.iter().filter(|p| !own.contains(&parameter_key(&snapshot, p))).cloned();
            // The path item's parameters first, in their order, as progenitor lists them.
            let mut merged: Vec<Value> = inherited.collect();
            merged.append(list);
            *list = merged;
        }
    }
    Ok(())
}

/// Marks a header parameter the caller sets although its name is a managed header's.
pub const CALLER_HEADER: &str = "x-vipps-caller-header";

/// Whether a media type is neither JSON nor a JSON variant.
fn is_non_json(media: &str) -> bool {
    !is_json_like(media)
}

fn keep_non_json_accept(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    let snapshot = doc.clone();
    for_each_operation(doc, |_, op| {
        let offers_other = op
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(code, _)| code.starts_with('2') || *code == "default")
            .filter_map(|(_, r)| resolve(&snapshot, r).get("content").and_then(Value::as_object))
            .any(|content| content.keys().any(|m| is_non_json(m)));
        if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for param in list.iter_mut() {
                let resolved = resolve(&snapshot, param).clone();
                let is_accept = resolved.get("in").and_then(Value::as_str) == Some("header")
                    && resolved.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("accept"));
                if !is_accept {
                    continue;
                }
                let schema = resolve(&snapshot, resolved.get("schema").unwrap_or(&Value::Null));
                let lists_other = schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(is_non_json);
                if offers_other || lists_other {
                    let mut kept = resolved;
                    kept[CALLER_HEADER] = Value::Bool(true);
                    *param = kept;
                }
            }
        }
        if let Some(Value::Object(content)) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")) {
            if let Some(text) = content.get_mut("text/plain") {
                let schema = resolve(&snapshot, text.get("schema").unwrap_or(&Value::Null));
                if schema.get("type").and_then(Value::as_str) == Some("string") {
                    let mut bare = json!({ "type": "string" });
                    if let Some(d) = schema.get("description") {
                        bare["description"] = d.clone();
                    }
                    text["schema"] = bare;
                }
            }
        }
        Ok(())
    })
}

fn drop_pseudo_paths(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|path, _| path.starts_with('/'));
    }
    Ok(())
}

fn drop_callbacks(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    for_each_operation(doc, |_, op| {
        op.remove("callbacks");
        Ok(())
    })
}

fn is_managed_header(param: &Value) -> bool {
    if param.get("in").and_then(Value::as_str) != Some("header") || param.get(CALLER_HEADER) == Some(&Value::Bool(true)) {
        return false;
    }
    let name = param.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    MANAGED_HEADERS.contains(&name.as_str()) || name.starts_with("vipps-system-")
}

fn strip_managed_headers(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn optional_idempotency_key(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn json_media_types(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn one_request_media_type(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn errors_as_problem(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn fold_success_responses(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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

fn string_enums(doc: &mut Value, cx: &Context) -> Result<(), SpecError> {
    let file = cx.file;
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

/// The marker `range-notes` appends to a description, read by `generate::range_checks`.
pub const RANGE_NOTE: &str = "x-vipps-range: ";

/// `[class]` with an optional quantifier, and the quantifier, for a pattern that is nothing else.
fn lone_character_class(pattern: &str) -> Option<(&str, &str)> {
    let rest = pattern.strip_prefix('[')?;
    let mut escaped = false;
    let end = rest.char_indices().find_map(|(i, c)| match c {
        _ if escaped => {
            escaped = false;
            None
        }
        '\\' => {
            escaped = true;
            None
        }
        ']' if i > 0 => Some(i),
        _ => None,
    })?;
    let (class, quantifier) = pattern.split_at(end + 2);
    let counted = quantifier.strip_prefix('{').and_then(|q| q.strip_suffix('}')).is_some_and(|q| {
        !q.is_empty() && q.split(',').count() <= 2 && q.chars().all(|c| c.is_ascii_digit() || c == ',')
    });
    (class[1..end + 1].chars().all(|c| c != '[') && (quantifier.is_empty() || ["+", "*"].contains(&quantifier) || counted))
        .then_some((class, quantifier))
}

fn anchor_character_class_patterns(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    walk_schemas(doc, "", &mut |_, map| {
        let Some(pattern) = map.get("pattern").and_then(Value::as_str) else { return };
        let Some((class, quantifier)) = lone_character_class(pattern) else { return };
        let quantifier = match quantifier {
            "" if map.get("minLength").and_then(Value::as_u64) == Some(0) => "*",
            "" => "+",
            q => q,
        };
        let anchored = format!("^{class}{quantifier}$");
        map.insert("pattern".into(), Value::String(anchored));
    });
    Ok(())
}

fn range_notes(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    fn bound(map: &Map<String, Value>, key: &str, exclusive: &str, step: i64) -> Option<i64> {
        let value = map.get(key)?;
        let value = value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))?;
        let exclusive = map.get(exclusive) == Some(&Value::Bool(true));
        Some(if exclusive { value + step } else { value })
    }
    walk_schemas(doc, "", &mut |_, map| {
        let Some(properties) = map.get_mut("properties").and_then(Value::as_object_mut) else { return };
        for property in properties.values_mut() {
            let Some(p) = property.as_object_mut() else { continue };
            if p.get("type").and_then(Value::as_str) != Some("integer") {
                continue;
            }
            let (min, max) = (bound(p, "minimum", "exclusiveMinimum", 1), bound(p, "maximum", "exclusiveMaximum", -1));
            if min.is_none() && max.is_none() {
                continue;
            }
            let note = format!(
                "{RANGE_NOTE}{}..{}",
                min.map(|m| m.to_string()).unwrap_or_default(),
                max.map(|m| format!("={m}")).unwrap_or_default()
            );
            let description = p.get("description").and_then(Value::as_str).unwrap_or_default();
            let description = if description.is_empty() { note } else { format!("{description}\n\n{note}") };
            p.insert("description".into(), Value::String(description));
            // typify would make an unsigned integer bounded below by one a `NonZero` type, which
            // an integer literal does not convert to; the note checks the bound instead.
            if min == Some(1) && p.get("format").and_then(Value::as_str).is_some_and(|f| f.starts_with("uint")) {
                p.remove("minimum");
                p.remove("exclusiveMinimum");
            }
        }
    });
    Ok(())
}

fn unsigned_integers(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    fn number(map: &Map<String, Value>, key: &str) -> Option<f64> {
        map.get(key).and_then(Value::as_f64)
    }
    fn money(ptr: &str) -> bool {
        let mut segments = ptr.rsplit('/');
        let (Some(name), Some("properties")) = (segments.next(), segments.next()) else { return false };
        let name = name.to_ascii_lowercase();
        name.contains("amount")
            || name.ends_with("price")
            || ["captured", "refunded", "cancelled", "authorized"].contains(&name.as_str())
    }
    walk_schemas(doc, "", &mut |ptr, map| {
        if map.get("type").and_then(Value::as_str) != Some("integer") {
            return;
        }
        // OpenAPI 3.0's boolean `exclusiveMinimum` and 3.1's numeric one.
        let min = match (number(map, "minimum"), map.get("exclusiveMinimum")) {
            (Some(m), Some(Value::Bool(true))) => Some(m + 1.0),
            (m, Some(Value::Number(n))) => n.as_f64().map(|e| m.map_or(e + 1.0, |m| m.max(e + 1.0))),
            (m, _) => m,
        };
        let unsigned = match min {
            Some(min) => min >= 0.0,
            None => money(ptr) && number(map, "maximum").is_none_or(|max| max >= 0.0),
        };
        if !unsigned {
            return;
        }
        let format = match map.get("format").and_then(Value::as_str) {
            Some("int8") => "uint8",
            Some("int16") => "uint16",
            Some("int32" | "int") => "uint32",
            None | Some("int64") => "uint64",
            Some(_) => return,
        };
        map.insert("format".into(), Value::String(format.into()));
        if format == "uint32" && !map.contains_key("maximum") {
            map.insert("maximum".into(), Value::from(i32::MAX));
        }
        // A property's bound of one is dropped by `range-notes`, which records it first.
        let property = ptr.rsplit('/').nth(1) == Some("properties");
        if min == Some(1.0) && !property {
            map.remove("minimum");
            map.remove("exclusiveMinimum");
        }
    });
    Ok(())
}

fn dates_by_example(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    fn is_date(text: &str) -> bool {
        let b = text.as_bytes();
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
            && matches!(text[5..7].parse::<u8>(), Ok(1..=12))
            && matches!(text[8..].parse::<u8>(), Ok(1..=31))
    }
    walk_schemas(doc, "", &mut |_, map| {
        let plain = map.get("type").and_then(Value::as_str) == Some("string")
            && !map.contains_key("format")
            && !map.contains_key("pattern")
            && !map.contains_key("enum");
        if plain && map.get("example").and_then(Value::as_str).is_some_and(is_date) {
            map.insert("format".into(), Value::String("date".into()));
        }
    });
    Ok(())
}

fn plain_response_ids(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
    const PREFIX: &str = "#/components/schemas/";
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(PREFIX)) {
                    out.push(name.replace("~1", "/").replace("~0", "~"));
                }
                map.values().for_each(|c| refs(c, out));
            }
            Value::Array(list) => list.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    // Every component schema a request body reaches, directly or through other schemas.
    let mut pending = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for method in METHODS {
                if let Some(body) = item.get(*method).and_then(|op| op.get("requestBody")) {
                    refs(body, &mut pending);
                }
            }
        }
    }
    if let Some(bodies) = doc.pointer("/components/requestBodies") {
        refs(bodies, &mut pending);
    }
    let mut requested = std::collections::HashSet::new();
    while let Some(name) = pending.pop() {
        if requested.insert(name.clone()) {
            if let Some(schema) = doc.pointer(&format!("/components/schemas/{}", crate::error::escape(&name))) {
                refs(schema, &mut pending);
            }
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return Ok(()) };
    for (_, schema) in schemas.iter_mut().filter(|(name, _)| !requested.contains(name.as_str())) {
        walk_schemas(schema, "", &mut |_, map| {
            let Some(properties) = map.get_mut("properties").and_then(Value::as_object_mut) else { return };
            for (property, p) in properties.iter_mut() {
                let Some(p) = p.as_object_mut() else { continue };
                let id = property == "id" || property.ends_with("Id");
                if id && p.get("type").and_then(Value::as_str) == Some("string") && !p.contains_key("format") {
                    for key in ["pattern", "minLength", "maxLength"] {
                        p.remove(key);
                    }
                }
            }
        });
    }
    Ok(())
}

fn nullable_component_schemas(doc: &mut Value, _cx: &Context) -> Result<(), SpecError> {
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
