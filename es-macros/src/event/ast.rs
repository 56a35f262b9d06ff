//! Parsing `#[event(..)]` on an item.

use crate::common::{parse_args, Arg, Ctx};
use proc_macro2::TokenStream;
use syn::Item;

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
}
