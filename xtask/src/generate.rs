//! Generation of one crate from one spec: normalize, progenitor, post-process, format.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle};
use quote::{format_ident, quote};
use serde_json::Value;

use crate::error::SpecError;
use crate::manifest::ApiEntry;
use crate::{check, load, normalize};

/// One operation as the runtime and the README see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The Rust method name on the generated `Client`.
    pub method_name: String,
    /// The operationId of the spec.
    pub operation_id: String,
    pub http_method: String,
    pub path: String,
    /// `current`, `deprecated` or `proposal`.
    pub status: String,
    /// Whether the operation takes an `Idempotency-Key` header.
    pub idempotency_key: bool,
    pub summary: String,
}

/// A spec after normalization, ready for progenitor.
pub struct Prepared {
    pub spec: openapiv3::OpenAPI,
    pub json: Value,
    pub operations: Vec<Operation>,
}

/// Reads, validates and normalizes one spec text.
pub fn prepare(file: &str, text: &str) -> Result<Prepared, SpecError> {
    prepare_except(file, text, &[])
}

/// [`prepare`] without the normalization rules named in `skip`.
pub fn prepare_except(file: &str, text: &str, skip: &[&str]) -> Result<Prepared, SpecError> {
    prepare_with(file, text, &crate::bundle::NoRefs, skip)
}

/// [`prepare_except`] for a spec whose external `$ref`s point into the documents of `refs`.
pub fn prepare_with(file: &str, text: &str, refs: &dyn crate::bundle::RefSource, skip: &[&str]) -> Result<Prepared, SpecError> {
    let mut json = load::parse_text(file, text)?;
    load::check_version(file, &json)?;
    // Typed parse of the document as written, so structural errors point at the source.
    load::to_openapi(file, &json)?;
    normalize::normalize_with(&mut json, &normalize::Context { file, refs }, skip)?;
    check::unsupported(file, &json)?;
    let spec = load::to_openapi(file, &json)?;
    let operations = operations(&json);
    Ok(Prepared { spec, json, operations })
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return out };
    for (path, item) in paths {
        for method in normalize::METHODS {
            let Some(op) = item.get(*method) else { continue };
            let operation_id = op["operationId"].as_str().unwrap_or_default().to_owned();
            let deprecated = op.get("deprecated") == Some(&Value::Bool(true));
            let status = op
                .get("x-vipps-status")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| if deprecated { "deprecated".into() } else { "current".into() });
            let idempotency_key = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| normalize::resolve(doc, p))
                .any(|p| p.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key")));
            out.push(Operation {
                method_name: method_name(&operation_id),
                operation_id,
                http_method: method.to_ascii_uppercase(),
                path: path.clone(),
                status,
                idempotency_key,
                summary: op.get("summary").and_then(Value::as_str).unwrap_or_default().trim().to_owned(),
            });
        }
    }
    out
}

/// The method name progenitor gives an operationId (it uses heck's snake case).
pub fn method_name(operation_id: &str) -> String {
    use heck_like::to_snake;
    to_snake(operation_id)
}

mod heck_like {
    /// Snake case with heck's word boundaries: lower→upper, and the last capital of an acronym
    /// that is followed by a lowercase letter starts a new word.
    pub fn to_snake(s: &str) -> String {
        let chars: Vec<char> = s.chars().collect();
        let mut out = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if !c.is_alphanumeric() {
                if !out.is_empty() && !out.ends_with('_') {
                    out.push('_');
                }
                continue;
            }
            if c.is_uppercase() && i > 0 && !out.ends_with('_') && !out.is_empty() {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                    out.push('_');
                }
            }
            out.extend(c.to_lowercase());
        }
        out.trim_end_matches('_').to_owned()
    }
}

/// The generated files of one crate, by path relative to the workspace root.
pub type Files = BTreeMap<PathBuf, String>;

/// Generates the whole crate for one API.
pub fn generate_crate(root: &Path, api: &ApiEntry) -> Result<Files, SpecError> {
    let file = format!("openapi/{}", api.spec);
    let text = std::fs::read_to_string(root.join(&file))
        .map_err(|e| SpecError::new(&file, "", format!("cannot read: {e}")))?;
    let refs = crate::bundle::DirRefs::beside(&root.join(&file));
    let mut prepared = prepare_with(&file, &text, &refs, &[])?;
    rename_operations(&file, api, &mut prepared)?;
    let lib = generate_lib(&file, api, &prepared)?;
    let dir = PathBuf::from("crates").join(&api.crate_name);
    let mut files = Files::new();
    files.insert(dir.join("Cargo.toml"), cargo_toml(&file, api, &lib));
    files.insert(dir.join("README.md"), readme(&file, api, &prepared));
    // The license texts, so that the published package carries them (cargo packages only
    // files inside the crate's directory). They are the workspace root's files, copied.
    files.insert(dir.join("LICENSE-MIT"), LICENSE_MIT.to_owned());
    files.insert(dir.join("LICENSE-APACHE"), LICENSE_APACHE.to_owned());
    files.insert(dir.join("src/lib.rs"), lib);
    Ok(files)
}

fn header(file: &str, comment: &str) -> String {
    format!("{comment} @generated by `cargo xtask codegen` from {file}. Do not edit by hand: change the spec,\n{comment} the normalization rules or the generator settings in xtask/, and regenerate.\n")
}

/// Runs progenitor on a prepared spec; a panic inside it becomes a located error.
pub fn run_progenitor(file: &str, spec: &openapiv3::OpenAPI) -> Result<proc_macro2::TokenStream, SpecError> {
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_inner_type(quote!(::vipps_core::Context))
        .with_hooks(HooksMode::Expected)
        .with_derive("PartialEq")
        .with_replacement(normalize::PROBLEM_SCHEMA, "::vipps_core::Problem", std::iter::empty());
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(|| Generator::new(&settings).generate_tokens(spec)));
    panic::set_hook(previous);
    match result {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(e)) => Err(SpecError::new(file, "", format!("progenitor: {e}"))),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(SpecError::new(file, "", format!("progenitor failed on a construct it does not support: {msg}")))
        }
    }
}

/// The formatted `src/lib.rs` for a spec text (used by tests on fixture specs).
pub fn generate_source(file: &str, text: &str, skip: &[&str]) -> Result<String, SpecError> {
    let prepared = prepare_except(file, text, skip)?;
    generate_lib(file, &ApiEntry::new("fixture", file, "fixture"), &prepared)
}

/// The formatted `src/lib.rs` for a spec text with the manifest facts of `api`.
pub fn generate_source_for(file: &str, text: &str, api: &ApiEntry) -> Result<String, SpecError> {
    let mut prepared = prepare(file, text)?;
    rename_operations(file, api, &mut prepared)?;
    generate_lib(file, api, &prepared)
}

/// Gives the operations named in the manifest's `operation-names` their method names.
///
/// Several published documents carry operationIds from a Java generator
/// (`acceptUsingPATCHV3`, `updatestatusUsingPOST`), which progenitor turns into methods no
/// user would guess (`accept_using_patchv3`). The operationId progenitor sees becomes the
/// method name from the manifest, so the method and its builder (`ForceAcceptAgreement`) are
/// named after it; [`Operation::operation_id`] keeps the published id, for the method's doc,
/// the `OperationDescriptor` and tracing. A name for an operationId the spec does not have,
/// or one that another operation's method already has, is an error.
pub fn rename_operations(file: &str, api: &ApiEntry, prepared: &mut Prepared) -> Result<(), SpecError> {
    if api.operation_names.is_empty() {
        return Ok(());
    }
    for (id, method) in &api.operation_names {
        let Some(op) = prepared.operations.iter_mut().find(|o| &o.operation_id == id) else {
            return Err(SpecError::new(file, "", format!("manifest: operation-names names `{id}`, which is not an operationId of {}", api.name)));
        };
        op.method_name = method.clone();
    }
    let mut names: Vec<&str> = prepared.operations.iter().map(|o| o.method_name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(SpecError::new(file, "", format!("manifest: operation-names makes two methods named `{}`", w[0])));
    }
    if let Some(paths) = prepared.json.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in normalize::METHODS {
                let Some(op) = item.get_mut(*method) else { continue };
                let renamed = op.get("operationId").and_then(Value::as_str).and_then(|id| api.operation_names.get(id));
                if let Some(name) = renamed {
                    op["operationId"] = Value::String(name.clone());
                }
            }
        }
    }
    prepared.spec = load::to_openapi(file, &prepared.json)?;
    Ok(())
}

fn generate_lib(file: &str, api: &ApiEntry, prepared: &Prepared) -> Result<String, SpecError> {
    let tokens = run_progenitor(file, &prepared.spec)?;
    // Sorted by method name, so that the runtime finds an operation by binary search.
    let mut sorted: Vec<&Operation> = prepared.operations.iter().collect();
    sorted.sort_by(|a, b| a.method_name.cmp(&b.method_name));
    for op in api.auth_operations.keys() {
        if !prepared.operations.iter().any(|o| &o.operation_id == op) {
            return Err(SpecError::new(file, "", format!("manifest: auth-operations names `{op}`, which is not an operationId of {}", api.name)));
        }
    }
    let auth_ident = |kind: &str| format_ident!("{}", crate::manifest::auth_variant(kind).expect("checked when the manifest was read"));
    let descriptors = sorted.into_iter().map(|op| {
        let Operation { method_name, operation_id, http_method, path, status, idempotency_key, .. } = op;
        let status = format_ident!("{}", normalize::camel(status));
        let auth = auth_ident(api.auth_operations.get(operation_id).unwrap_or(&api.auth));
        quote! {
            ::vipps_core::OperationDescriptor {
                method_name: #method_name,
                operation_id: #operation_id,
                http_method: #http_method,
                path: #path,
                status: ::vipps_core::OperationStatus::#status,
                idempotency_key: #idempotency_key,
                auth: ::vipps_core::Auth::#auth,
            }
        }
    });
    let auth = auth_ident(&api.auth);
    let headers = api.headers.iter().map(|h| format_ident!("{}", crate::manifest::header_variant(h).expect("checked when the manifest was read")));
    let (test, production) = (api.environments.iter().any(|e| e == "test"), api.environments.iter().any(|e| e == "production"));
    let name = &api.name;
    let title = &prepared.spec.info.title;
    let version = &prepared.spec.info.version;
    let extra = quote! {
        /// This API and its operations, as the runtime sees them (authentication, managed headers,
        /// environments, idempotency keys, tracing, status).
        pub static API: ::vipps_core::ApiDescriptor = ::vipps_core::ApiDescriptor {
            name: #name,
            title: #title,
            version: #version,
            auth: ::vipps_core::Auth::#auth,
            headers: &[#(::vipps_core::ManagedHeader::#headers),*],
            environments: ::vipps_core::Environments { test: #test, production: #production },
            operations: &[#(#descriptors),*],
        };

        impl Client {
            /// Creates a client that sends every request through the shared `vipps-core` runtime:
            /// its HTTP client, token cache, headers, retries and tracing.
            pub fn from_runtime(runtime: &::vipps_core::Runtime) -> Self {
                Self::from_context(::vipps_core::Context::new(runtime.clone(), &API))
            }

            /// Creates a client from a runtime context, for example one made for a merchant with
            /// [`vipps_core::Context::with_merchant`].
            pub fn from_context(context: ::vipps_core::Context) -> Self {
                let http = context.runtime().http_client().clone();
                let base_url = context.runtime().base_url().to_owned();
                Self::new_with_client(&base_url, http, context)
            }
        }

        /// progenitor's hooks are not used: every `send` calls `vipps_core::hooks::send`, which
        /// returns the SDK's own error (see `return_sdk_errors` in xtask).
        impl ClientHooks<::vipps_core::Context> for Client {}
    };
    let mut syntax: syn::File = syn::parse2(quote! {
        #![doc = include_str!("../README.md")]
        #![allow(clippy::all, rustdoc::all, missing_docs, deprecated, unused_imports)]
        #tokens
        #extra
    })
    .map_err(|e| SpecError::new(file, "", format!("generated code does not parse: {e}")))?;
    mark_deprecated(&mut syntax, &prepared.operations);
    document_operation_ids(&mut syntax, &prepared.operations);
    streamline_requests(&mut syntax);
    return_sdk_errors(&mut syntax).map_err(|e| SpecError::new(file, "", format!("return_sdk_errors: {e}")))?;
    redact_secrets(&mut syntax);
    crate::ergonomics::setters_take_values(&mut syntax);
    crate::ergonomics::conversion_errors_keep_reason(&mut syntax);
    crate::ergonomics::accept_sdk_idempotency_keys(&mut syntax);
    crate::open_enums::open_response_enums(&mut syntax);
    crate::open_enums::digit_strings_from_numbers(&mut syntax);
    crate::open_enums::range_checks(&mut syntax).map_err(|e| SpecError::new(file, "", format!("range_checks: {e}")))?;
    Ok(format!("{}\n{}", header(file, "//"), prettyplease::unparse(&syntax)))
}

/// Two changes to how progenitor's `send` methods build a request, so that a call does not
/// do work whose result is thrown away (the facade benchmark measures both):
///
/// - progenitor adds the spec's `info.version` as an `api-version` header to every request.
///   The Vipps APIs do not read it, so the statement that adds it goes (and the header map's
///   capacity with it).
/// - Each query parameter is a `.query(&QueryParam::new(name, &value))`. For an absent optional
///   parameter reqwest still rewrites the URL twice (adding an empty query, then removing it);
///   with four optional parameters that is most of the cost of building the request.
///   The call becomes `vipps_core::hooks::query(builder, &QueryParam::new(name, &value))`,
///   which leaves the builder alone when the parameter writes nothing and otherwise calls the
///   same `.query`.
pub fn streamline_requests(file: &mut syn::File) {
    use syn::visit_mut::VisitMut;

    /// `strip_header_map`: the block being visited no longer adds any header to `header_map`,
    /// so the map and the `.headers(header_map)` that merges it go too.
    struct Streamline {
        strip_header_map: bool,
    }

    /// progenitor's own `header_map.append(HeaderName::from_static("api-version"), ...)`; a
    /// header parameter a spec declares is appended by its plain name and stays.
    fn is_api_version_append(stmt: &syn::Stmt) -> bool {
        let syn::Stmt::Expr(syn::Expr::MethodCall(call), _) = stmt else { return false };
        if call.method != "append" || !is_ident(&call.receiver, "header_map") {
            return false;
        }
        let Some(syn::Expr::Call(name)) = call.args.first() else { return false };
        path_names(&name.func).ends_with(&["HeaderName".to_string(), "from_static".to_string()])
            && matches!(name.args.first(), Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) if s.value() == "api-version")
    }

    fn is_ident(expr: &syn::Expr, name: &str) -> bool {
        matches!(expr, syn::Expr::Path(p) if p.path.is_ident(name))
    }

    /// The segments of a path expression (`a::b::c` gives `["a", "b", "c"]`); none for any
    /// other expression.
    fn path_names(expr: &syn::Expr) -> Vec<String> {
        match expr {
            syn::Expr::Path(p) => p.path.segments.iter().map(|s| s.ident.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    /// `let mut header_map = ...::HeaderMap::with_capacity(N);` gives its `N`.
    fn header_map_capacity(stmt: &mut syn::Stmt) -> Option<&mut syn::LitInt> {
        let syn::Stmt::Local(local) = stmt else { return None };
        let syn::Pat::Ident(ident) = &local.pat else { return None };
        if ident.ident != "header_map" {
            return None;
        }
        let syn::Expr::Call(call) = &mut *local.init.as_mut()?.expr else { return None };
        if path_names(&call.func).last()? != "with_capacity" {
            return None;
        }
        match call.args.first_mut()? {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(n), .. }) => Some(n),
            _ => None,
        }
    }

    fn is_query_param(expr: &syn::Expr) -> bool {
        let syn::Expr::Reference(r) = expr else { return false };
        let syn::Expr::Call(call) = &*r.expr else { return false };
        path_names(&call.func) == ["progenitor_client", "QueryParam", "new"]
    }

    impl VisitMut for Streamline {
        fn visit_block_mut(&mut self, block: &mut syn::Block) {
            let outer = self.strip_header_map;
            let before = block.stmts.len();
            block.stmts.retain(|stmt| !is_api_version_append(stmt));
            let removed = (before - block.stmts.len()) as u64;
            if removed > 0 {
                let mut now_empty = false;
                for stmt in &mut block.stmts {
                    if let Some(n) = header_map_capacity(stmt) {
                        let value = n.base10_parse::<u64>().unwrap_or(removed).saturating_sub(removed);
                        *n = syn::LitInt::new(&format!("{value}usize"), n.span());
                        now_empty = value == 0;
                    }
                }
                if now_empty {
                    block.stmts.retain_mut(|stmt| header_map_capacity(stmt).is_none());
                    self.strip_header_map = true;
                }
            }
            syn::visit_mut::visit_block_mut(self, block);
            self.strip_header_map = outer;
        }

        fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
            syn::visit_mut::visit_expr_mut(self, expr);
            let syn::Expr::MethodCall(call) = expr else { return };
            if self.strip_header_map && call.method == "headers" && call.args.len() == 1 && is_ident(&call.args[0], "header_map") {
                *expr = (*call.receiver).clone();
                return;
            }
            if call.method != "query" || call.args.len() != 1 || !is_query_param(&call.args[0]) {
                return;
            }
            let (builder, param) = (&call.receiver, &call.args[0]);
            *expr = syn::parse_quote!(::vipps_core::hooks::query(#builder, #param));
        }
    }

    Streamline { strip_header_map: false }.visit_file_mut(file);
}

/// Makes every generated `send` return `vipps_core::Error` and go through
/// `vipps_core::hooks::send`, so that a caller writes `.send().await?` in a function that
/// returns the SDK's error, and no failure is squeezed through progenitor's types on the way.
///
/// progenitor's hooks cannot do this: `exec` must return a `reqwest::Error`, which only
/// reqwest can make, so a time limit that ran out, a refused redirect or a body over the size
/// limit would have no way out, and `pre` can only return a string. The pass rewrites each
/// `send`:
///
/// - the return type's error becomes `::vipps_core::Error`;
/// - `client.pre(..)?`, `let result = client.exec(..)`, `client.post(..)?` and
///   `let response = result?` become one
///   `let response = ::vipps_core::hooks::send(client.inner(), &client.client, request, info.operation_id).await?`;
/// - `Error::InvalidRequest` (an argument that did not convert) becomes
///   `::vipps_core::Error::invalid_input`, and the error of progenitor's `form_urlencoded`
///   goes through `::vipps_core::hooks::request_error`;
/// - `ResponseValue::from_response(response)` becomes `::vipps_core::hooks::decode(response)`
///   (which names the JSON path of a value that does not decode), and `ResponseValue::empty`
///   and `ResponseValue::stream` become `::vipps_core::hooks::empty` and `stream`: the response
///   `hooks::send` gives back is a `vipps_core::hooks::Response`, its body already read;
/// - `Error::ErrorResponse(..)` and `Error::UnexpectedResponse(response)` become
///   `::vipps_core::hooks::error_response(response).await` and
///   `::vipps_core::hooks::unexpected_response(response).await`.
///
/// A `send` whose shape is not the one above is an error: the generator stops rather than
/// leave a method on progenitor's error type.
pub fn return_sdk_errors(file: &mut syn::File) -> Result<(), String> {
    use syn::visit_mut::VisitMut;

    fn path_is(expr: &syn::Expr, names: &[&str]) -> bool {
        match expr {
            syn::Expr::Path(p) => {
                let segs: Vec<String> = p
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                segs.len() >= names.len()
                    && segs[segs.len() - names.len()..]
                        .iter()
                        .zip(names)
                        .all(|(a, b)| a == b)
            }
            _ => false,
        }
    }

    /// `client.<method>(...)` somewhere in a statement (under `.await` and `?`).
    fn calls_client(stmt: &syn::Stmt, method: &str) -> bool {
        fn inner(expr: &syn::Expr, method: &str) -> bool {
            match expr {
                syn::Expr::Try(t) => inner(&t.expr, method),
                syn::Expr::Await(a) => inner(&a.base, method),
                syn::Expr::MethodCall(c) => {
                    c.method == method
                        && matches!(&*c.receiver, syn::Expr::Path(p) if p.path.is_ident("client"))
                }
                _ => false,
            }
        }
        match stmt {
            syn::Stmt::Expr(e, _) => inner(e, method),
            syn::Stmt::Local(l) => l.init.as_ref().is_some_and(|i| inner(&i.expr, method)),
            _ => false,
        }
    }

    fn binds(stmt: &syn::Stmt, name: &str) -> bool {
        matches!(stmt, syn::Stmt::Local(syn::Local { pat: syn::Pat::Ident(p), .. }) if p.ident == name)
    }

    struct Arms;
    impl VisitMut for Arms {
        fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
            // progenitor's own request-building helpers (`form_urlencoded`) return its error.
            if let syn::Expr::Try(t) = expr {
                if matches!(&*t.expr, syn::Expr::MethodCall(c) if c.method == "form_urlencoded") {
                    let inner = &t.expr;
                    *t.expr = syn::parse_quote!(#inner.map_err(::vipps_core::hooks::request_error));
                    return;
                }
            }
            if let syn::Expr::Call(call) = expr {
                if path_is(&call.func, &["Error", "ErrorResponse"]) {
                    *expr = syn::parse_quote!(::vipps_core::hooks::error_response(response).await);
                    return;
                }
                if path_is(&call.func, &["Error", "UnexpectedResponse"]) {
                    *expr =
                        syn::parse_quote!(::vipps_core::hooks::unexpected_response(response).await);
                    return;
                }
                if path_is(&call.func, &["ResponseValue", "empty"]) {
                    *expr = syn::parse_quote!(::vipps_core::hooks::empty(response));
                    return;
                }
                if path_is(&call.func, &["ResponseValue", "stream"]) {
                    *expr = syn::parse_quote!(::vipps_core::hooks::stream(response));
                    return;
                }
                if path_is(&call.func, &["ResponseValue", "from_response"]) {
                    *expr = syn::parse_quote!(::vipps_core::hooks::decode(response));
                    return;
                }
            }
            if path_is(expr, &["Error", "InvalidRequest"]) {
                *expr = syn::parse_quote!(::vipps_core::Error::invalid_input);
                return;
            }
            syn::visit_mut::visit_expr_mut(self, expr);
        }
    }

    fn rewrite(f: &mut syn::ImplItemFn) -> Result<(), String> {
        let name = f.sig.ident.to_string();
        let syn::ReturnType::Type(_, ty) = &mut f.sig.output else {
            return Err(format!("`{name}` returns nothing"));
        };
        let syn::Type::Path(result) = &mut **ty else {
            return Err(format!("`{name}` does not return a Result"));
        };
        let last = result.path.segments.last_mut().ok_or("empty return type")?;
        let syn::PathArguments::AngleBracketed(args) = &mut last.arguments else {
            return Err(format!("`{name}`: no Result arguments"));
        };
        let Some(syn::GenericArgument::Type(error)) = args.args.iter_mut().nth(1) else {
            return Err(format!("`{name}`: no error type"));
        };
        *error = syn::parse_quote!(::vipps_core::Error);
        let stmts = std::mem::take(&mut f.block.stmts);
        let mut found = [false; 4];
        for stmt in stmts {
            if calls_client(&stmt, "pre") {
                found[0] = true;
            } else if binds(&stmt, "result") && calls_client(&stmt, "exec") {
                found[1] = true;
                f.block.stmts.push(syn::parse_quote! {
                    let response = ::vipps_core::hooks::send(client.inner(), &client.client, request, info.operation_id).await?;
                });
            } else if calls_client(&stmt, "post") {
                found[2] = true;
            } else if binds(&stmt, "response") && !found[3] {
                found[3] = true;
            } else {
                f.block.stmts.push(stmt);
            }
        }
        if found != [true; 4] {
            return Err(format!(
                "a `send` method does not have progenitor's pre/exec/post shape ({found:?})"
            ));
        }
        Arms.visit_block_mut(&mut f.block);
        Ok(())
    }

    let mut count = 0;
    for item in &mut file.items {
        let syn::Item::Mod(module) = item else {
            continue;
        };
        if module.ident != "builder" {
            continue;
        }
        for item in module
            .content
            .iter_mut()
            .flat_map(|(_, items)| items.iter_mut())
        {
            let syn::Item::Impl(imp) = item else { continue };
            for member in &mut imp.items {
                let syn::ImplItem::Fn(f) = member else {
                    continue;
                };
                if f.sig.ident == "send" && f.sig.asyncness.is_some() {
                    rewrite(f)?;
                    count += 1;
                }
            }
        }
    }
    if count == 0
        && file
            .items
            .iter()
            .any(|i| matches!(i, syn::Item::Mod(m) if m.ident == "builder"))
    {
        return Err("no `send` method found in the builder module".into());
    }
    Ok(())
}

/// Fields whose values are secrets: the generated types that hold them do not derive `Debug`
/// but get one that prints `[REDACTED]` for them (the Access Token API's responses carry the
/// token itself, and the Webhooks API's registration answer the `secret` deliveries are signed
/// with, which a `{:?}` in a log line would otherwise print). `token` is a payment's or a
/// Checkout session's bearer token, `callback_authorization_token` the secret a Checkout
/// callback is authorized with, `api_key` and `password` the carrier credentials a Checkout
/// session passes on (Porterbuddy, Helthjem), `code_verifier` a Login PKCE verifier,
/// `auth_req_id` the handle a CIBA login's tokens are fetched with. In an OAuth token request
/// (a struct with a `grant_type`), `code`, the authorization code, is one too (see
/// [`OAUTH_SECRET_FIELDS`]); elsewhere `code` is an error code and stays visible.
pub const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "client_secret",
    "refresh_token",
    "id_token",
    "secret",
    "token",
    "callback_authorization_token",
    "api_key",
    "password",
    "code_verifier",
    "auth_req_id",
];

/// Fields that are secrets in a struct that also has a `grant_type` (an OAuth token request).
pub const OAUTH_SECRET_FIELDS: &[&str] = &["code"];

/// Replaces the derived `Debug` of every generated struct with a field named in
/// [`SECRET_FIELDS`] by one that hides those fields' values.
pub fn redact_secrets(file: &mut syn::File) {
    fn visit(items: &mut Vec<syn::Item>) {
        let mut added = Vec::new();
        for item in items.iter_mut() {
            match item {
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &mut m.content {
                        visit(inner);
                    }
                }
                syn::Item::Struct(st) => {
                    let syn::Fields::Named(fields) = &st.fields else {
                        continue;
                    };
                    let named = |f: &syn::Field, n: &str| f.ident.as_ref().is_some_and(|i| i == n);
                    let oauth = fields.named.iter().any(|f| named(f, "grant_type"));
                    let secret = |f: &syn::Field| {
                        f.ident.as_ref().is_some_and(|i| {
                            let i = i.to_string();
                            SECRET_FIELDS.contains(&i.as_str()) || (oauth && OAUTH_SECRET_FIELDS.contains(&i.as_str()))
                        })
                    };
                    if !fields.named.iter().any(secret) {
                        continue;
                    }
                    let mut had_debug = false;
                    for attr in &mut st.attrs {
                        if !attr.path().is_ident("derive") {
                            continue;
                        }
                        let Ok(list) = attr.parse_args_with(syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated) else { continue };
                        let kept: Vec<&syn::Path> = list
                            .iter()
                            .filter(|p| p.segments.last().is_none_or(|s| s.ident != "Debug"))
                            .collect();
                        if kept.len() != list.len() {
                            had_debug = true;
                            *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
                        }
                    }
                    if !had_debug {
                        continue;
                    }
                    let name = &st.ident;
                    let label = name.to_string();
                    let shown = fields.named.iter().map(|f| {
                        let ident = f.ident.as_ref().expect("named");
                        let text = ident.to_string();
                        if secret(f) {
                            quote!(.field(#text, &"[REDACTED]"))
                        } else {
                            quote!(.field(#text, &self.#ident))
                        }
                    });
                    added.push(syn::parse_quote! {
                        impl ::std::fmt::Debug for #name {
                            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                                f.debug_struct(#label) #(#shown)* .finish()
                            }
                        }
                    });
                }
                _ => {}
            }
        }
        items.extend(added);
    }
    visit(&mut file.items);
}

/// Adds the published operationId to the doc of each `Client` method, so that a method
/// renamed by the manifest's `operation-names` can still be found from the Vipps MobilePay
/// documentation (which names operations by their ids).
fn document_operation_ids(file: &mut syn::File, operations: &[Operation]) {
    for item in &mut file.items {
        let syn::Item::Impl(imp) = item else { continue };
        let syn::Type::Path(ty) = &*imp.self_ty else { continue };
        if imp.trait_.is_some() || !ty.path.is_ident("Client") {
            continue;
        }
        for member in &mut imp.items {
            let syn::ImplItem::Fn(f) = member else { continue };
            let name = f.sig.ident.to_string();
            if let Some(op) = operations.iter().find(|o| o.method_name == name) {
                let note = format!(" Published operationId: `{}`.", op.operation_id);
                f.attrs.push(syn::parse_quote!(#[doc = ""]));
                f.attrs.push(syn::parse_quote!(#[doc = #note]));
            }
        }
    }
}

/// Adds `#[deprecated]` to the `Client` methods of deprecated operations.
fn mark_deprecated(file: &mut syn::File, operations: &[Operation]) {
    for item in &mut file.items {
        let syn::Item::Impl(imp) = item else { continue };
        let syn::Type::Path(ty) = &*imp.self_ty else { continue };
        if imp.trait_.is_some() || !ty.path.is_ident("Client") {
            continue;
        }
        for member in &mut imp.items {
            let syn::ImplItem::Fn(f) = member else { continue };
            let name = f.sig.ident.to_string();
            if let Some(op) = operations.iter().find(|o| o.method_name == name && o.status == "deprecated") {
                let note = format!("{} {} is deprecated by Vipps MobilePay", op.http_method, op.path);
                f.attrs.push(syn::parse_quote!(#[deprecated(note = #note)]));
            }
        }
    }
}

/// The workspace root's license files, which every generated crate carries a copy of.
const LICENSE_MIT: &str = include_str!("../../LICENSE-MIT");
const LICENSE_APACHE: &str = include_str!("../../LICENSE-APACHE");

/// The workspace's repository (`workspace.package.repository`), which READMEs link into:
/// a README on crates.io or docs.rs cannot follow a relative link out of its package.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

fn cargo_toml(file: &str, api: &ApiEntry, lib: &str) -> String {
    let mut deps = vec!["bytes", "futures-core", "progenitor-client", "reqwest", "serde", "serde_json", "vipps-core"];
    for (needle, dep) in [("::regress::", "regress"), ("::chrono::", "chrono"), ("::uuid::", "uuid")] {
        if lib.contains(needle) {
            deps.push(dep);
        }
    }
    deps.sort();
    let deps: String = deps.iter().map(|d| format!("{d} = {{ workspace = true }}\n")).collect();
    format!(
        "{header}\n[package]\nname = \"{name}\"\ndescription = \"{desc}\"\nreadme = \"README.md\"\nversion.workspace = true\nedition.workspace = true\nrust-version.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nkeywords = [\"vipps\", \"mobilepay\", \"payments\", \"openapi\", \"{keyword}\"]\ncategories.workspace = true\npublish.workspace = true\n\n[dependencies]\n{deps}\n[lints]\nworkspace = true\n",
        header = header(file, "#"),
        name = api.crate_name,
        keyword = api.name,
        desc = api.description.replace('"', "\\\""),
    )
}

fn readme(file: &str, api: &ApiEntry, prepared: &Prepared) -> String {
    let krate = api.crate_name.replace('-', "_");
    let mut out = format!(
        "<!-- {} -->\n\n# {}\n\n{}\n\nGenerated from [`{file}`]({REPOSITORY}/blob/main/{file}) ({} {}), a spec that mirrors the published \
         Vipps MobilePay document. Every request goes through [`vipps-core`]({REPOSITORY}/tree/main/crates/vipps-core): access token, \
         subscription key, `Merchant-Serial-Number`, `Vipps-System-*` headers, idempotency keys, retries and \
         tracing. Most services use it through the [`vipps`]({REPOSITORY}/tree/main/crates/vipps) facade; a service that needs this API \
         alone can depend on this crate and `vipps-core` (its default feature `rustls` is the TLS backend; \
         `default-features = false, features = [\"native-tls\"]` uses the platform's TLS instead):\n\n```rust,no_run\n# async fn run() -> Result<(), vipps_core::Error> {{\nlet runtime = vipps_core::Runtime::builder()\n    .client_id(\"my-client-id\")\n    .client_secret(\"my-client-secret\")\n    .subscription_key(\"my-subscription-key\")\n    .environment(vipps_core::Environment::Test)\n    .build()?;\nlet client = {krate}::Client::from_runtime(&runtime);\n# let _ = client;\n# Ok(())\n# }}\n```\n\nOther clients made from the same `runtime` (or from `vipps::Vipps`) share its HTTP connection pool and token cache.\n\n## Operations\n\n| Method | Path | `Client` method | Status |\n|---|---|---|---|\n",
        header(file, "").trim().replace('\n', " "),
        api.crate_name,
        api.description,
        prepared.spec.info.title,
        prepared.spec.info.version,
    );
    for op in &prepared.operations {
        out.push_str(&format!("| {} | `{}` | `{}` | {} |\n", op.http_method, op.path, op.method_name, op.status));
    }
    out
}

/// `crates/vipps/src/generated.rs`: the facade's accessor and namespace (`vipps::<module>`:
/// the generated `Client`, `types`, `builder`s and `API`, the SDK's `Error`, and the helpers of
/// `crates/vipps/src/helpers/<module>.rs` when the manifest says `helpers = true`) of every API of the
/// manifest, each behind the cargo feature named after the API. An API not served in every
/// environment gets an accessor that returns an error outside them (the facade's `served_in`).
pub fn facade(apis: &[ApiEntry]) -> String {
    let accessors = |merchant: bool| {
        apis.iter().map(move |api| {
            let feature = &api.name;
            let krate = format_ident!("{}", api.crate_name.replace('-', "_"));
            let accessor = format_ident!("{}", api.accessor);
            let doc = format!("{} (feature `{feature}`).", api.description.trim_end_matches('.'));
            let client = if merchant {
                quote!(#krate::Client::from_context(self.context(&#krate::API)))
            } else {
                quote!(#krate::Client::from_runtime(self.runtime()))
            };
            if api.everywhere() {
                quote! {
                    #[doc = #doc]
                    #[cfg(feature = #feature)]
                    pub fn #accessor(&self) -> #krate::Client {
                        #client
                    }
                }
            } else {
                let note = format!("Served only in {}: an error in another environment (a custom base URL is always allowed).", api.environments.join(" and "));
                quote! {
                    #[doc = #doc]
                    ///
                    #[doc = #note]
                    #[cfg(feature = #feature)]
                    pub fn #accessor(&self) -> Result<#krate::Client, vipps_core::Error> {
                        crate::client::served_in(self.runtime(), &#krate::API)?;
                        Ok(#client)
                    }
                }
            }
        })
    };
    let on_vipps = accessors(false);
    let on_merchant = accessors(true);
    let reexports = apis.iter().map(|api| {
        let feature = &api.name;
        let krate = format_ident!("{}", api.crate_name.replace('-', "_"));
        let module = format_ident!("{}", api.module);
        let doc = format!(
            "{}: its `Client` (also from `Vipps::{}()`), request and response `types`, operation `builder`s and `API` descriptor{}.",
            api.description.trim_end_matches('.'),
            api.accessor,
            if api.helpers { ", with the SDK's helpers for it" } else { "" }
        );
        let helpers = api.helpers.then(|| quote!(pub use crate::helpers::#module::*;));
        quote! {
            #[doc = #doc]
            #[cfg(feature = #feature)]
            pub mod #module {
                pub use #krate::{builder, types, ByteStream, Client, ResponseValue, API};
                pub use vipps_core::Error;
                #helpers
            }
        }
    });
    let tokens = quote! {
        //! The accessor and namespace of each API in `openapi/manifest.toml`.
        impl crate::Vipps {
            #(#on_vipps)*
        }
        impl crate::Merchant {
            #(#on_merchant)*
        }
        #(#reexports)*
    };
    let file: syn::File = syn::parse2(tokens).expect("the facade's generated code parses");
    format!("{}\n{}", header("openapi/manifest.toml", "//"), prettyplease::unparse(&file))
}

/// `tests/apis.rs`: every API of the manifest's `API` descriptor, for the workspace tests
/// (the coverage table is checked against them).
pub fn test_apis(apis: &[ApiEntry]) -> String {
    let descriptors = apis.iter().map(|api| {
        let krate = format_ident!("{}", api.crate_name.replace('-', "_"));
        quote!(&#krate::API)
    });
    let tokens = quote! {
        /// The `API` descriptor of every API in `openapi/manifest.toml`, in its order.
        pub static APIS: &[&vipps_core::ApiDescriptor] = &[#(#descriptors),*];

        /// [`APIS`], to iterate over.
        pub fn apis() -> Vec<&'static vipps_core::ApiDescriptor> {
            APIS.to_vec()
        }
    };
    let file: syn::File = syn::parse2(tokens).expect("the generated test list parses");
    format!("{}\n{}", header("openapi/manifest.toml", "//"), prettyplease::unparse(&file))
}

/// The markers around the generated crates' rows of the README's crate table.
pub const README_BEGIN: &str = "<!-- generated crates: begin (cargo xtask codegen, from openapi/manifest.toml) -->";
pub const README_END: &str = "<!-- generated crates: end -->";

/// `readme` with the rows between [`README_BEGIN`] and [`README_END`] written from the manifest.
pub fn readme_table(readme: &str, apis: &[ApiEntry]) -> Result<String, String> {
    let (before, rest) = readme.split_once(README_BEGIN).ok_or("README.md lacks the generated crates' begin marker")?;
    let (_, after) = rest.split_once(README_END).ok_or("README.md lacks the generated crates' end marker")?;
    let rows: String = apis
        .iter()
        .map(|api| {
            let served = if api.everywhere() { String::new() } else { format!("; {} only", api.environments.join(" and ")) };
            format!(
                "| `crates/{}` | `openapi/{}` | {} | `{}()`, feature `{}`{served} |\n",
                api.crate_name,
                api.spec,
                api.description.trim_end_matches('.'),
                api.accessor,
                api.name
            )
        })
        .collect();
    let table = format!("| generated crate | spec | what it is | facade |\n|---|---|---|---|\n{rows}");
    Ok(format!("{before}{README_BEGIN}\n{table}{README_END}{after}"))
}

/// The markers around the README's coverage table (`## Coverage`).
pub const COVERAGE_BEGIN: &str = "<!-- coverage: begin (cargo xtask codegen, from openapi/ and manifest.toml) -->";
pub const COVERAGE_END: &str = "<!-- coverage: end -->";

/// The operations of `api` as its generated crate has them (method names from the manifest).
pub fn api_operations(root: &Path, api: &ApiEntry) -> Result<Vec<Operation>, SpecError> {
    let file = format!("openapi/{}", api.spec);
    let text = std::fs::read_to_string(root.join(&file)).map_err(|e| SpecError::new(&file, "", format!("cannot read: {e}")))?;
    let refs = crate::bundle::DirRefs::beside(&root.join(&file));
    let mut prepared = prepare_with(&file, &text, &refs, &[])?;
    rename_operations(&file, api, &mut prepared)?;
    Ok(prepared.operations)
}

/// `readme` with the coverage table between [`COVERAGE_BEGIN`] and [`COVERAGE_END`] written
/// from the operations of every API (published operationId and generated method side by side).
pub fn coverage_table(readme: &str, apis: &[(&ApiEntry, Vec<Operation>)]) -> Result<String, String> {
    let (before, rest) = readme.split_once(COVERAGE_BEGIN).ok_or("README.md lacks the coverage table's begin marker")?;
    let (_, after) = rest.split_once(COVERAGE_END).ok_or("README.md lacks the coverage table's end marker")?;
    let mut table = String::from("| API | Method | Path | operationId | crate method | status |\n|---|---|---|---|---|---|\n");
    for (api, ops) in apis {
        for op in ops {
            table.push_str(&format!("| {} | {} | `{}` | {} | `{}` | {} |\n", api.name, op.http_method, op.path, op.operation_id, op.method_name, op.status));
        }
    }
    Ok(format!("{before}{COVERAGE_BEGIN}\n{table}{COVERAGE_END}{after}"))
}
