//! `#[policy]` and `#[projection]` on an impl block: each method is a handler of one event
//! type; the macro generates the dispatch by topic and (for policies) the registration by name.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

/// Which of the two attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[policy]`: handlers get a `ProcessContext`.
    Policy,
    /// `#[projection]`: handlers get a `Tx`.
    Projection,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Policy => "#[policy]",
            Kind::Projection => "#[projection]",
        }
    }
}

/// Entry point: parse, validate (collecting every error), expand; on error the impl block is
/// still emitted (without the inert `#[reset]`) so the rest of the crate keeps compiling.
pub fn run(kind: Kind, args: TokenStream, input: TokenStream) -> TokenStream {
    let parsed = match ast::Input::parse(args, input.clone()) {
        Ok(p) => p,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#input #err);
        }
    };
    match valid::validate(kind, &parsed) {
        Ok(model) => expand::expand(model),
        Err(e) => {
            let err = e.to_compile_error();
            let item = parsed.fallback();
            quote!(#item #err)
        }
    }
}
