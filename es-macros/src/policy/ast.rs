//! Parsing: the impl block and the macro's arguments, with the user's tokens kept for spans.

use crate::common::{parse_args, Arg, Ctx};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{ImplItem, Item};

pub struct Input {
    pub args: Vec<Arg>,
    pub arg_error: Option<syn::Error>,
    pub item: Item,
}

impl Input {
    pub fn parse(args: TokenStream, input: TokenStream) -> syn::Result<Self> {
        let item: Item = syn::parse2(input)?;
        let mut ctx = Ctx::default();
        let args = parse_args(args, &mut ctx);
        Ok(Input {
            args,
            arg_error: ctx.finish().err(),
            item,
        })
    }

    /// The item as written, minus the inert `#[reset]` attributes.
    pub fn fallback(&self) -> TokenStream {
        let mut item = self.item.clone();
        if let Item::Impl(i) = &mut item {
            strip_reset(&mut i.items);
        }
        item.into_token_stream()
    }
}

/// True for `#[reset]`.
pub fn is_reset(a: &syn::Attribute) -> bool {
    a.path().is_ident("reset")
}

/// Removes `#[reset]` from every method.
pub fn strip_reset(items: &mut [ImplItem]) {
    for it in items {
        if let ImplItem::Fn(f) = it {
            f.attrs.retain(|a| !is_reset(a));
        }
    }
}
