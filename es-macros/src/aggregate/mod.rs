//! `#[aggregate]` on a struct (the state) and on its impl block (the events).

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

/// Entry point: parse, validate (collecting every error), expand. On error the item is still
/// emitted (without the macro's own attributes) so that the rest of the crate keeps compiling.
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
            let fallback = parsed.fallback();
            quote!(#fallback #err)
        }
    }
}
