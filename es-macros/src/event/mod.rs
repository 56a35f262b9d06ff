//! `#[event(aggregate = Order)]` on a struct: a free-standing event type with its own mutation.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

/// Entry point: parse, validate (collecting every error), expand; on error the struct is still
/// emitted so the rest of the crate keeps compiling.
pub fn run(args: TokenStream, input: TokenStream) -> TokenStream {
    let parsed = match ast::Input::parse(args, input.clone()) {
        Ok(p) => p,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#input #err);
        }
    };
    match valid::validate(&parsed) {
        Ok(model) => expand::expand(model),
        Err(e) => {
            let err = e.to_compile_error();
            let item = &parsed.item;
            quote!(#item #err)
        }
    }
}
