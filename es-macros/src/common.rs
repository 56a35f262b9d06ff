//! What the macros share: argument parsing, the error context, naming helpers.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use std::fmt::Display;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Path, Token, Type};

/// Collects every error of one macro invocation so they are reported together.
#[derive(Default)]
pub struct Ctx {
    errors: Vec<syn::Error>,
}

impl Ctx {
    /// An error spanned on `tokens`.
    pub fn error(&mut self, tokens: impl ToTokens, msg: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, msg));
    }
    /// An error at `span`.
    pub fn error_at(&mut self, span: Span, msg: impl Display) {
        self.errors.push(syn::Error::new(span, msg));
    }
    /// A parse error.
    pub fn syn(&mut self, e: syn::Error) {
        self.errors.push(e);
    }
    /// All errors as one, or `Ok` when there were none.
    pub fn finish(self) -> Result<(), syn::Error> {
        let mut it = self.errors.into_iter();
        match it.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in it {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}

/// One `key` or `key = value` macro argument.
pub struct Arg {
    pub key: Ident,
    pub value: Option<Expr>,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        Ok(Arg { key, value })
    }
}

/// Parses a comma-separated argument list.
pub fn parse_args(tokens: TokenStream, ctx: &mut Ctx) -> Vec<Arg> {
    match Punctuated::<Arg, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(p) => p.into_iter().collect(),
        Err(e) => {
            ctx.syn(e);
            Vec::new()
        }
    }
}

/// The string literal value of an argument, or an error saying what was expected.
pub fn str_value(arg: &Arg, ctx: &mut Ctx) -> Option<LitStr> {
    match &arg.value {
        Some(Expr::Lit(l)) => match &l.lit {
            Lit::Str(s) => return Some(s.clone()),
            other => ctx.error(
                other,
                format_args!("`{}` takes a string: `{} = \"...\"`", arg.key, arg.key),
            ),
        },
        Some(other) => ctx.error(
            other,
            format_args!("`{}` takes a string: `{} = \"...\"`", arg.key, arg.key),
        ),
        None => ctx.error(
            &arg.key,
            format_args!("`{}` needs a value: `{} = \"...\"`", arg.key, arg.key),
        ),
    }
    None
}

/// The path value of an argument (`aggregate = Order`).
pub fn path_value(arg: &Arg, ctx: &mut Ctx, example: &str) -> Option<Path> {
    match &arg.value {
        Some(Expr::Path(p)) if p.qself.is_none() => Some(p.path.clone()),
        Some(other) => {
            ctx.error(
                other,
                format_args!("`{}` takes a path: `{}`", arg.key, example),
            );
            None
        }
        None => {
            ctx.error(
                &arg.key,
                format_args!("`{}` needs a value: `{}`", arg.key, example),
            );
            None
        }
    }
}

/// The `crate = "..."` path, default `::es_runtime`.
pub fn crate_path(lit: Option<&LitStr>, ctx: &mut Ctx) -> Path {
    match lit {
        Some(l) => match l.parse::<Path>() {
            Ok(p) => p,
            Err(_) => {
                ctx.error(
                    l,
                    "`crate` takes a path in a string, like `crate = \"::es_runtime\"`",
                );
                syn::parse_quote!(::es_runtime)
            }
        },
        None => syn::parse_quote!(::es_runtime),
    }
}

/// True when the attributes already derive a trait with this (last path segment) name.
pub fn has_derive(attrs: &[Attribute], name: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            a.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
                .map(|list| {
                    list.iter()
                        .any(|p| p.segments.last().is_some_and(|s| s.ident == name))
                })
                .unwrap_or(false)
        })
}

/// The derive attribute for the traits not yet derived, plus the serde crate path.
pub fn derives(attrs: &[Attribute], krate: &Path, partial_eq: bool) -> TokenStream {
    let mut list = Vec::new();
    if !has_derive(attrs, "Clone") {
        list.push(quote!(::core::clone::Clone));
    }
    if !has_derive(attrs, "Debug") {
        list.push(quote!(::core::fmt::Debug));
    }
    if partial_eq && !has_derive(attrs, "PartialEq") {
        list.push(quote!(::core::cmp::PartialEq));
    }
    if !has_derive(attrs, "Serialize") {
        list.push(quote!(#krate::__private::serde::Serialize));
    }
    if !has_derive(attrs, "Deserialize") {
        list.push(quote!(#krate::__private::serde::Deserialize));
    }
    let serde_path = format!("{}::__private::serde", krate.to_token_stream()).replace(' ', "");
    quote! {
        #[derive(#(#list),*)]
        #[serde(crate = #serde_path)]
    }
}

/// `SomethingHappened` -> `something_happened`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `make_it_so` -> `MakeItSo`.
pub fn camel_case(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// Reports `HashMap` / `HashSet` anywhere inside an event field's type.
pub fn check_deterministic(ty: &Type, ctx: &mut Ctx) {
    use syn::visit::Visit;
    struct V<'a>(&'a mut Ctx);
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_path_segment(&mut self, seg: &'ast syn::PathSegment) {
            let name = seg.ident.to_string();
            if name == "HashMap" || name == "HashSet" {
                let fix = if name == "HashMap" {
                    "BTreeMap"
                } else {
                    "BTreeSet"
                };
                self.0.error(
                    &seg.ident,
                    format_args!(
                        "`{name}` iterates in random order, so the same event would be stored and hashed differently: use `{fix}` instead"
                    ),
                );
            }
            syn::visit::visit_path_segment(self, seg);
        }
    }
    V(ctx).visit_type(ty);
}

/// Reports borrowed types in an event field (events are stored, so fields own their data).
pub fn check_owned(ty: &Type, ctx: &mut Ctx) {
    match ty {
        Type::Reference(r) => ctx.error(
            r,
            "event fields are stored, so they must own their data: take an owned type (e.g. `String` instead of `&str`, `Vec<T>` instead of `&[T]`)",
        ),
        Type::ImplTrait(t) => ctx.error(t, "event fields need a concrete type: replace `impl Trait` with a named type"),
        _ => {}
    }
}

/// Doc attributes only.
pub fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_between_cases() {
        assert_eq!(snake_case("World"), "world");
        assert_eq!(snake_case("OrderLine"), "order_line");
        assert_eq!(camel_case("make_it_so"), "MakeItSo");
        assert_eq!(camel_case("_private__name"), "PrivateName");
    }

    #[test]
    fn errors_are_collected_and_reported_together() {
        let mut ctx = Ctx::default();
        assert!(Ctx::default().finish().is_ok());
        ctx.error_at(Span::call_site(), "first");
        ctx.error_at(Span::call_site(), "second");
        let e = ctx.finish().unwrap_err();
        let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn hash_collections_are_reported_anywhere_in_a_type() {
        let mut ctx = Ctx::default();
        check_deterministic(
            &syn::parse_quote!(Vec<Option<std::collections::HashMap<String, u8>>>),
            &mut ctx,
        );
        check_deterministic(
            &syn::parse_quote!(std::collections::BTreeMap<String, u8>),
            &mut ctx,
        );
        let e = ctx.finish().unwrap_err();
        assert_eq!(e.into_iter().count(), 1);
    }

    #[test]
    fn arguments_parse_keywords_and_values() {
        let mut ctx = Ctx::default();
        let args = parse_args(quote!(crate = "::x", aggregate = Order, Created), &mut ctx);
        assert!(ctx.finish().is_ok());
        let keys: Vec<String> = args.iter().map(|a| a.key.to_string()).collect();
        assert_eq!(keys, ["crate", "aggregate", "Created"]);
        assert!(args[2].value.is_none());
        let mut ctx = Ctx::default();
        assert_eq!(str_value(&args[0], &mut ctx).unwrap().value(), "::x");
        assert!(path_value(&args[1], &mut ctx, "")
            .unwrap()
            .is_ident("Order"));
        assert!(str_value(&args[1], &mut ctx).is_none());
        assert!(ctx.finish().is_err());
    }
}
