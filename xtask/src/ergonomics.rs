//! Passes over the generated code that make requests pleasant to build: the natural line a
//! user writes (`.phone_number("4791234567")`, `.idempotency_key(key)`) compiles, and a value
//! that breaks the spec's constraints keeps its reason in the error.

use quote::format_ident;
use syn::visit_mut::VisitMut;

/// The setters of typify's struct builders (`types::builder::X`) for optional fields take the
/// value itself, and each such field gets a `clear_<field>()` that says it is absent.
///
/// typify makes the setter of an optional field take `TryInto<Option<T>>`, so a caller writes
/// `.phone_number(Some("4791234567".try_into()?))`: `Option` has no conversion from `&str`,
/// and the `Some` must hold the already-converted `T`. After this pass the setter takes
/// `TryInto<T>` (a `&str` for a constrained string, checked there, its reason kept for
/// `build()`/`send()`) and wraps it in `Some`; `clear_<field>()` sets `None`. A field's
/// default is still `None`, so `clear_` is only needed to undo an earlier setter.
pub fn setters_take_values(file: &mut syn::File) {
    let Some(types) = module_mut(&mut file.items, "types") else { return };
    let Some(builder) = module_mut(types, "builder") else { return };
    for item in builder.iter_mut() {
        let syn::Item::Impl(imp) = item else { continue };
        if imp.trait_.is_some() {
            continue;
        }
        let mut added = Vec::new();
        for member in &mut imp.items {
            let syn::ImplItem::Fn(f) = member else { continue };
            let Some(inner) = optional_target(f) else { continue };
            let Some(field) = assigned_field(f) else { continue };
            let name = f.sig.ident.clone();
            let label = name.to_string();
            let where_clause: syn::WhereClause = syn::parse_quote! {
                where
                    T: ::std::convert::TryInto<#inner>,
                    T::Error: ::std::fmt::Display,
            };
            f.sig.generics.where_clause = Some(where_clause);
            f.block = syn::parse_quote! {{
                self.#field = value
                    .try_into()
                    .map(::std::option::Option::Some)
                    .map_err(|e| format!("error converting supplied value for {}: {e}", #label));
                self
            }};
            let clear = format_ident!("clear_{}", label.trim_start_matches("r#"));
            let doc = format!(" Leaves `{label}` out (it is absent unless a value was set).");
            added.push(syn::parse_quote! {
                #[doc = #doc]
                pub fn #clear(mut self) -> Self {
                    self.#field = Ok(::std::option::Option::None);
                    self
                }
            });
        }
        imp.items.extend(added.into_iter().map(syn::ImplItem::Fn));
    }
}

/// `T` of a setter whose only bound is `T: TryInto<Option<X>>`: `X`.
fn optional_target(f: &syn::ImplItemFn) -> Option<syn::Type> {
    let where_clause = f.sig.generics.where_clause.as_ref()?;
    for pred in &where_clause.predicates {
        let syn::WherePredicate::Type(p) = pred else { continue };
        for bound in &p.bounds {
            let syn::TypeParamBound::Trait(t) = bound else { continue };
            let last = t.path.segments.last()?;
            if last.ident != "TryInto" {
                continue;
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else { continue };
            let Some(syn::GenericArgument::Type(syn::Type::Path(target))) = args.args.first() else { continue };
            let opt = target.path.segments.last()?;
            if opt.ident != "Option" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(inner) = &opt.arguments else { return None };
            if let Some(syn::GenericArgument::Type(ty)) = inner.args.first() {
                return Some(ty.clone());
            }
        }
    }
    None
}

/// The `self.<field>` the setter assigns.
fn assigned_field(f: &syn::ImplItemFn) -> Option<syn::Member> {
    f.block.stmts.iter().find_map(|stmt| {
        let syn::Stmt::Expr(syn::Expr::Assign(a), _) = stmt else { return None };
        let syn::Expr::Field(field) = &*a.left else { return None };
        matches!(&*field.base, syn::Expr::Path(p) if p.path.is_ident("self")).then(|| field.member.clone())
    })
}

fn module_mut<'a>(items: &'a mut [syn::Item], name: &str) -> Option<&'a mut Vec<syn::Item>> {
    items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == name => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    })
}

/// progenitor's operation builders (`builder::X`) keep the reason a value did not convert.
///
/// progenitor's setters for parameters drop the conversion error
/// (`.map_err(|_| "conversion to `CreateChargeIdempotencyKey` for idempotency_key failed")`),
/// so a key that is too long or has a `/` surfaces at `send()` without saying which rule it
/// broke. Each such setter gets the bound `Error: Display` and its message gains `: <reason>`
/// (`... failed: longer than 40 characters`). Every conversion the generated types offer
/// (`ConversionError`, `Infallible`, `TryFromIntError`) is `Display`.
pub fn conversion_errors_keep_reason(file: &mut syn::File) {
    struct Closures(bool);
    impl VisitMut for Closures {
        fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
            syn::visit_mut::visit_expr_mut(self, expr);
            let syn::Expr::Closure(c) = expr else { return };
            if c.inputs.len() != 1 || !matches!(c.inputs[0], syn::Pat::Wild(_)) {
                return;
            }
            let syn::Expr::MethodCall(call) = &*c.body else { return };
            let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(msg), .. }) = &*call.receiver else { return };
            if call.method != "to_string" || !msg.value().starts_with("conversion to") {
                return;
            }
            *expr = syn::parse_quote!(|e| format!("{}: {}", #msg, e));
            self.0 = true;
        }
    }
    let Some(builder) = module_mut(&mut file.items, "builder") else { return };
    for item in builder.iter_mut() {
        let syn::Item::Impl(imp) = item else { continue };
        for member in &mut imp.items {
            let syn::ImplItem::Fn(f) = member else { continue };
            let mut visitor = Closures(false);
            visitor.visit_block_mut(&mut f.block);
            if !visitor.0 {
                continue;
            }
            let Some(where_clause) = f.sig.generics.where_clause.as_mut() else { continue };
            let mut bounds = Vec::new();
            for pred in &where_clause.predicates {
                let syn::WherePredicate::Type(p) = pred else { continue };
                for bound in &p.bounds {
                    let syn::TypeParamBound::Trait(t) = bound else { continue };
                    if t.path.segments.last().is_some_and(|s| s.ident == "TryInto") {
                        let (ty, tr) = (&p.bounded_ty, &t.path);
                        bounds.push(syn::parse_quote!(<#ty as #tr>::Error: ::std::fmt::Display));
                    }
                }
            }
            where_clause.predicates.extend::<Vec<syn::WherePredicate>>(bounds);
        }
    }
}

/// Every generated `...IdempotencyKey` type converts from the SDK's own
/// `vipps_core::IdempotencyKey` (owned or borrowed), so `.idempotency_key(key)` takes the key
/// a caller made with `IdempotencyKey::generate()` or `IdempotencyKey::new(..)`.
///
/// The spec's constraint stays the generated type's: the conversion parses the key's text,
/// so a spec stricter than `vipps-core` still has the last word.
pub fn accept_sdk_idempotency_keys(file: &mut syn::File) {
    let Some(types) = module_mut(&mut file.items, "types") else { return };
    let keys: Vec<syn::Ident> = types
        .iter()
        .filter_map(|item| match item {
            syn::Item::Impl(imp) => {
                let trait_path = &imp.trait_.as_ref()?.1;
                if trait_path.segments.last()?.ident != "FromStr" {
                    return None;
                }
                let syn::Type::Path(ty) = &*imp.self_ty else { return None };
                let ident = ty.path.get_ident()?;
                ident.to_string().ends_with("IdempotencyKey").then(|| ident.clone())
            }
            _ => None,
        })
        .collect();
    for key in keys {
        types.push(syn::parse_quote! {
            impl ::std::convert::TryFrom<::vipps_core::IdempotencyKey> for #key {
                type Error = self::error::ConversionError;
                fn try_from(value: ::vipps_core::IdempotencyKey) -> ::std::result::Result<Self, self::error::ConversionError> {
                    value.as_str().parse()
                }
            }
        });
        types.push(syn::parse_quote! {
            impl ::std::convert::TryFrom<&::vipps_core::IdempotencyKey> for #key {
                type Error = self::error::ConversionError;
                fn try_from(value: &::vipps_core::IdempotencyKey) -> ::std::result::Result<Self, self::error::ConversionError> {
                    value.as_str().parse()
                }
            }
        });
    }
}
