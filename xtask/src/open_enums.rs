//! Two passes over the generated `types` module that make responses readable when an API
//! sends values its document does not list (see issue 12).
//!
//! - [`open_response_enums`]: every string enum a response can hold gets an
//!   `Unknown(String)` variant that keeps a value the enum does not list, instead of failing
//!   the whole response. The variant is only ever read: serializing it is an error
//!   (`vipps_core::hooks::refuse_unknown`), so a request (a body or a query parameter) still
//!   sends only the values the document lists. Enums that only requests use stay closed.
//! - [`digit_strings_from_numbers`]: a string newtype whose pattern is anchored and admits
//!   only digits (`^\d{4,10}$`, Management's `MSN`) also decodes from a JSON integer, which
//!   the Management API sends for `msn` in its sales unit lists; the value is checked
//!   against the same constraints as a string.

use std::collections::{BTreeMap, BTreeSet};

use syn::visit::Visit;
use syn::visit_mut::VisitMut;

/// The identifiers of every path segment in a syntax node (type names, with generics).
#[derive(Default)]
struct Names(BTreeSet<String>);

impl<'ast> Visit<'ast> for Names {
    fn visit_path_segment(&mut self, seg: &'ast syn::PathSegment) {
        self.0.insert(seg.ident.to_string());
        syn::visit::visit_path_segment(self, seg);
    }
}

fn module_items<'a>(file: &'a mut syn::File, name: &str) -> Option<&'a mut Vec<syn::Item>> {
    file.items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == name => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    })
}

/// The types named in the return types of the client's `send` methods.
fn response_roots(file: &mut syn::File) -> BTreeSet<String> {
    let mut names = Names::default();
    if let Some(items) = module_items(file, "builder") {
        for item in items.iter() {
            let syn::Item::Impl(imp) = item else { continue };
            for member in &imp.items {
                if let syn::ImplItem::Fn(f) = member {
                    if f.sig.ident == "send" {
                        names.visit_return_type(&f.sig.output);
                    }
                }
            }
        }
    }
    names.0
}

fn type_name(item: &syn::Item) -> Option<String> {
    match item {
        syn::Item::Struct(s) => Some(s.ident.to_string()),
        syn::Item::Enum(e) => Some(e.ident.to_string()),
        syn::Item::Type(t) => Some(t.ident.to_string()),
        _ => None,
    }
}

/// The types each type of `items` names in its fields.
fn references(items: &[syn::Item]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some(name) = type_name(item) else { continue };
        let mut names = Names::default();
        match item {
            syn::Item::Struct(s) => names.visit_fields(&s.fields),
            syn::Item::Enum(e) => e.variants.iter().for_each(|v| names.visit_fields(&v.fields)),
            syn::Item::Type(t) => names.visit_type(&t.ty),
            _ => {}
        }
        out.insert(name, names.0);
    }
    out
}

fn is_string_enum(e: &syn::ItemEnum) -> bool {
    !e.variants.is_empty() && e.variants.iter().all(|v| matches!(v.fields, syn::Fields::Unit)) && derives(&e.attrs, "Deserialize")
}

fn derives(attrs: &[syn::Attribute], name: &str) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("derive")).any(|a| {
        a.parse_args_with(syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
            .is_ok_and(|list| list.iter().any(|p| p.segments.last().is_some_and(|s| s.ident == name)))
    })
}

fn drop_derive(attrs: &mut [syn::Attribute], name: &str) -> bool {
    let mut dropped = false;
    for attr in attrs.iter_mut().filter(|a| a.path().is_ident("derive")) {
        let Ok(list) = attr.parse_args_with(syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated) else { continue };
        let kept: Vec<&syn::Path> = list.iter().filter(|p| p.segments.last().is_none_or(|s| s.ident != name)).collect();
        if kept.len() != list.len() {
            dropped = true;
            *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
        }
    }
    dropped
}

/// Adds `Unknown(String)` to every string enum reachable from a response (see the module doc).
/// Returns the names of the enums it opened.
pub fn open_response_enums(file: &mut syn::File) -> BTreeSet<String> {
    let roots = response_roots(file);
    let Some(items) = module_items(file, "types") else { return BTreeSet::new() };
    let refs = references(items);
    let mut reachable = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().filter(|r| refs.contains_key(r)).collect();
    while let Some(name) = todo.pop() {
        if reachable.insert(name.clone()) {
            todo.extend(refs[&name].iter().filter(|n| refs.contains_key(*n) && !reachable.contains(*n)).cloned());
        }
    }
    let mut opened = BTreeSet::new();
    for item in items.iter_mut() {
        let syn::Item::Enum(e) = item else { continue };
        if !reachable.contains(&e.ident.to_string()) || !is_string_enum(e) {
            continue;
        }
        drop_derive(&mut e.attrs, "Copy");
        e.variants.push(syn::parse_quote! {
            /// A value this version of the SDK does not know, kept as the API sent it. It is
            /// only read from responses: a request holding it is refused before it is sent.
            #[serde(untagged, serialize_with = "::vipps_core::hooks::refuse_unknown")]
            Unknown(::std::string::String)
        });
        opened.insert(e.ident.to_string());
    }
    // `Display` prints an unknown value as it came.
    for item in items.iter_mut() {
        let syn::Item::Impl(imp) = item else { continue };
        let (Some((_, path, _)), syn::Type::Path(ty)) = (&imp.trait_, &*imp.self_ty) else { continue };
        let is_display = path.segments.last().is_some_and(|s| s.ident == "Display");
        if !is_display || !ty.path.get_ident().is_some_and(|i| opened.contains(&i.to_string())) {
            continue;
        }
        struct Arm;
        impl VisitMut for Arm {
            fn visit_expr_match_mut(&mut self, m: &mut syn::ExprMatch) {
                m.arms.push(syn::parse_quote!(Self::Unknown(ref value) => f.write_str(value),));
            }
        }
        Arm.visit_item_impl_mut(imp);
    }
    // A type that holds an opened enum is no longer `Copy`.
    let mut not_copy = opened.clone();
    loop {
        let mut changed = false;
        for item in items.iter_mut() {
            let Some(name) = type_name(item) else { continue };
            if not_copy.contains(&name) || !refs.get(&name).is_some_and(|r| r.iter().any(|n| not_copy.contains(n))) {
                continue;
            }
            let attrs = match item {
                syn::Item::Struct(s) => &mut s.attrs,
                syn::Item::Enum(e) => &mut e.attrs,
                _ => continue,
            };
            if drop_derive(attrs, "Copy") {
                not_copy.insert(name);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    opened
}

/// Whether an ECMA pattern is anchored at both ends and admits only ASCII digits.
pub fn digits_only(pattern: &str) -> bool {
    let Some(body) = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')) else { return false };
    let rest = body.strip_prefix("\\d").or_else(|| body.strip_prefix("[0-9]"));
    let Some(rest) = rest else { return false };
    match rest {
        "" | "+" => true,
        _ => rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .is_some_and(|r| !r.is_empty() && r.split(',').count() <= 2 && r.split(',').enumerate().all(|(i, n)| n.chars().all(|c| c.is_ascii_digit()) && (i == 1 || !n.is_empty()))),
    }
}

/// Lets every string newtype whose pattern admits only digits decode from a JSON integer too
/// (see the module doc). Returns the names of the types changed.
pub fn digit_strings_from_numbers(file: &mut syn::File) -> BTreeSet<String> {
    let Some(items) = module_items(file, "types") else { return BTreeSet::new() };
    struct Pattern(Option<String>);
    impl<'ast> Visit<'ast> for Pattern {
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            let is_regex_new = matches!(&*call.func, syn::Expr::Path(p) if p.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().ends_with(&["Regex".into(), "new".into()]));
            if let (true, Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }))) = (is_regex_new, call.args.first()) {
                self.0 = Some(s.value());
            }
            syn::visit::visit_expr_call(self, call);
        }
    }
    let self_name = |imp: &syn::ItemImpl| match &*imp.self_ty {
        syn::Type::Path(p) => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    };
    let trait_is = |imp: &syn::ItemImpl, name: &str| imp.trait_.as_ref().is_some_and(|(_, p, _)| p.segments.last().is_some_and(|s| s.ident == name));
    let mut digits = BTreeSet::new();
    for item in items.iter() {
        let syn::Item::Impl(imp) = item else { continue };
        if !trait_is(imp, "FromStr") {
            continue;
        }
        let mut pattern = Pattern(None);
        pattern.visit_item_impl(imp);
        if let (Some(name), Some(p)) = (self_name(imp), pattern.0) {
            if digits_only(&p) {
                digits.insert(name);
            }
        }
    }
    struct FromDigits(bool);
    impl VisitMut for FromDigits {
        fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
            if let syn::Expr::Call(call) = expr {
                let names: Vec<String> = match &*call.func {
                    syn::Expr::Path(p) => p.path.segments.iter().map(|s| s.ident.to_string()).collect(),
                    _ => Vec::new(),
                };
                if names.ends_with(&["String".into(), "deserialize".into()]) && call.args.len() == 1 {
                    let arg = &call.args[0];
                    *expr = syn::parse_quote!(::vipps_core::hooks::digit_string(#arg));
                    self.0 = true;
                    return;
                }
            }
            syn::visit_mut::visit_expr_mut(self, expr);
        }
    }
    let mut changed = BTreeSet::new();
    for item in items.iter_mut() {
        let syn::Item::Impl(imp) = item else { continue };
        let Some(name) = self_name(imp).filter(|n| digits.contains(n)) else { continue };
        if !trait_is(imp, "Deserialize") {
            continue;
        }
        let mut pass = FromDigits(false);
        pass.visit_item_impl_mut(imp);
        if pass.0 {
            changed.insert(name);
        }
    }
    changed
}

/// Reads the notes `range-notes` left in field docs (see [`crate::normalize::RANGE_NOTE`]):
/// each noted field of a generated struct loses the note and gets
/// `vipps_core::hooks::range` as its serde functions, so that its bounds are checked when a
/// value is read and before it is sent. Returns how many fields it changed.
pub fn range_checks(file: &mut syn::File) -> Result<usize, String> {
    use crate::normalize::RANGE_NOTE;
    fn note(attrs: &mut Vec<syn::Attribute>) -> Option<(Option<i64>, Option<i64>)> {
        let mut found = None;
        attrs.retain_mut(|attr| {
            let syn::Meta::NameValue(nv) = &mut attr.meta else { return true };
            if !nv.path.is_ident("doc") {
                return true;
            }
            let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }) = &nv.value else { return true };
            let value = text.value();
            let Some(at) = value.find(RANGE_NOTE) else { return true };
            let range = value[at + RANGE_NOTE.len()..].lines().next().unwrap_or_default().trim().to_owned();
            let (min, max) = range.split_once("..").unwrap_or_default();
            let max = max.strip_prefix('=').unwrap_or(max);
            found = Some((min.parse().ok(), max.parse().ok()));
            let kept = value[..at].trim_end().to_owned();
            if kept.is_empty() {
                return false;
            }
            nv.value = syn::parse_quote!(#kept);
            true
        });
        found
    }
    fn is_option(ty: &syn::Type) -> bool {
        matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
    }
    fn visit(items: &mut [syn::Item], count: &mut usize) {
        for item in items {
            match item {
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &mut m.content {
                        visit(inner, count);
                    }
                }
                syn::Item::Struct(st) => {
                    let syn::Fields::Named(fields) = &mut st.fields else { continue };
                    for field in &mut fields.named {
                        let Some((min, max)) = note(&mut field.attrs) else { continue };
                        let min = min.map_or("{ i64::MIN }".to_owned(), |m| format!("{{ {m} }}"));
                        let max = max.map_or("{ i64::MAX }".to_owned(), |m| format!("{{ {m} }}"));
                        let (de, ser) = if is_option(&field.ty) {
                            ("deserialize_option", "serialize_option")
                        } else {
                            ("deserialize", "serialize")
                        };
                        let de = format!("::vipps_core::hooks::range::{de}::<_, _, {min}, {max}>");
                        let ser = format!("::vipps_core::hooks::range::{ser}::<_, _, {min}, {max}>");
                        // typify reads a required nullable field with `Option::deserialize`, so
                        // that it must be present; the range check takes its place and keeps
                        // it required (no `default`).
                        let mut required = false;
                        field.attrs.retain_mut(|a| {
                            if !a.path().is_ident("serde") {
                                return true;
                            }
                            let Ok(list) = a.parse_args_with(syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated) else { return true };
                            let option_de = |m: &syn::Meta| {
                                matches!(m, syn::Meta::NameValue(nv) if nv.path.is_ident("deserialize_with")
                                    && quote::ToTokens::to_token_stream(&nv.value).to_string() == "\"::std::option::Option::deserialize\"")
                            };
                            if !list.iter().any(option_de) {
                                return true;
                            }
                            required = true;
                            let kept: Vec<&syn::Meta> = list.iter().filter(|m| !option_de(m)).collect();
                            *a = syn::parse_quote!(#[serde(#(#kept),*)]);
                            !kept.is_empty()
                        });
                        if required {
                            field.attrs.push(syn::parse_quote!(#[serde(deserialize_with = #de, serialize_with = #ser)]));
                        } else if is_option(&field.ty) {
                            field.attrs.push(syn::parse_quote!(#[serde(default, deserialize_with = #de, serialize_with = #ser)]));
                        } else {
                            field.attrs.push(syn::parse_quote!(#[serde(deserialize_with = #de, serialize_with = #ser)]));
                        }
                        *count += 1;
                    }
                }
                _ => {}
            }
        }
    }
    let mut count = 0;
    visit(&mut file.items, &mut count);
    let left = quote::ToTokens::to_token_stream(file).to_string();
    if left.contains(RANGE_NOTE.trim_end()) {
        return Err(format!("a `{}` note is left outside a struct field", RANGE_NOTE.trim_end()));
    }
    Ok(count)
}
