//! Parsing: the annotated item and the macro's arguments, with the user's tokens kept for spans.

use crate::common::{parse_args, Arg, Ctx};
use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{Ident, Item, ItemImpl, ItemStruct};

/// What `#[aggregate]` was put on.
pub enum Input {
    /// The aggregate's state.
    Struct {
        args: Vec<Arg>,
        item: ItemStruct,
        arg_error: Option<syn::Error>,
    },
    /// The aggregate's commands and events.
    Impl {
        args: Vec<Arg>,
        item: ItemImpl,
        arg_error: Option<syn::Error>,
    },
    /// Anything else (reported by validation).
    Other { item: Item },
}

impl Input {
    pub fn parse(args: TokenStream, input: TokenStream) -> syn::Result<Self> {
        let item: Item = syn::parse2(input)?;
        let mut ctx = Ctx::default();
        let args = parse_args(args, &mut ctx);
        let arg_error = ctx.finish().err();
        Ok(match item {
            Item::Struct(item) => Input::Struct {
                args,
                item,
                arg_error,
            },
            Item::Impl(item) => Input::Impl {
                args,
                item,
                arg_error,
            },
            item => Input::Other { item },
        })
    }

    /// The item as the user wrote it, minus the inert attributes `#[attribute]` and `#[event]`,
    /// with the bookkeeping field in place: what is emitted next to compile errors.
    pub fn fallback(&self) -> TokenStream {
        let krate = match self {
            Input::Struct { args, .. } | Input::Impl { args, .. } => args
                .iter()
                .find(|a| a.key == "crate")
                .and_then(|a| match &a.value {
                    Some(syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    })) => s.parse::<syn::Path>().ok(),
                    _ => None,
                })
                .unwrap_or_else(|| syn::parse_quote!(::es_runtime)),
            Input::Other { .. } => syn::parse_quote!(::es_runtime),
        };
        match self {
            Input::Struct { item, .. } => {
                let mut item = item.clone();
                for f in item.fields.iter_mut() {
                    f.attrs.retain(|a| !a.path().is_ident("attribute"));
                }
                if let syn::Fields::Named(named) = &mut item.fields {
                    named.named.insert(
                        0,
                        syn::parse_quote!(__es_meta: #krate::__private::AggregateMeta),
                    );
                }
                item.into_token_stream()
            }
            Input::Impl { item, .. } => {
                let mut item = item.clone();
                let name = self_ident(&item);
                for it in item.items.iter_mut() {
                    if let syn::ImplItem::Fn(f) = it {
                        f.attrs.retain(|a| !a.path().is_ident("event"));
                    }
                }
                if let Some(name) = name {
                    InjectMeta {
                        name: &name,
                        default: quote!(::core::default::Default::default()),
                        construct: None,
                    }
                    .visit_item_impl_mut(&mut item);
                }
                item.into_token_stream()
            }
            Input::Other { item } => item.into_token_stream(),
        }
    }
}

/// The aggregate's name from `impl World`.
pub fn self_ident(item: &ItemImpl) -> Option<Ident> {
    match &*item.self_ty {
        syn::Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(p.path.segments[0].ident.clone())
        }
        _ => None,
    }
}

/// Completes struct literals of the aggregate (`World { .. }`, `Self { .. }`) with the
/// bookkeeping, so the user never writes it.
///
/// With `construct` (the `__private` path), a literal becomes
/// `<World as Construct>::construct(Fields::<World> { .. })`: the fields go into the twin struct
/// `#[aggregate]` on the struct generates, which adds the bookkeeping. A struct without
/// `#[aggregate]` then fails with `Construct`'s message, which names the missing attribute, and
/// no error mentions the bookkeeping field. Without `construct` (error recovery, where no twin
/// exists) the field is added to the literal itself. Literals with `..base` are left alone.
pub struct InjectMeta<'a> {
    pub name: &'a Ident,
    pub default: TokenStream,
    pub construct: Option<TokenStream>,
}

impl VisitMut for InjectMeta<'_> {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        syn::visit_mut::visit_expr_mut(self, expr);
        let syn::Expr::Struct(e) = expr else {
            return;
        };
        let is_aggregate = e.qself.is_none()
            && e.path.segments.len() == 1
            && (e.path.segments[0].ident == "Self" || e.path.segments[0].ident == *self.name);
        let has = e
            .fields
            .iter()
            .any(|f| matches!(&f.member, syn::Member::Named(i) if i == "__es_meta"));
        if !is_aggregate || has || e.rest.is_some() {
            return;
        }
        match &self.construct {
            Some(p) => {
                let path = &e.path;
                let fields = &e.fields;
                let span = syn::spanned::Spanned::span(path);
                *expr = syn::parse_quote_spanned! {span=>
                    <#path as #p::Construct>::construct(#p::Fields::<#path> { #fields })
                };
            }
            None => {
                let default = &self.default;
                e.fields.push(syn::parse_quote!(__es_meta: #default));
            }
        }
    }
}
