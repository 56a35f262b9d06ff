//! Procedural macros of es: `#[aggregate]` and `#[event]`.
//!
//! Use them through `es-runtime`, which re-exports them (`use es_runtime::prelude::*;`); the
//! generated code names only `::es_runtime::__private` (or the path given with
//! `crate = "..."`), `::core` and `::std`. Each macro is split into `ast` (parse, keep the
//! user's tokens for spans), `valid` (check, collecting every error) and `expand` (generate).

mod aggregate;
mod common;
mod event;

use proc_macro::TokenStream;

/// Makes a struct an event-sourced aggregate, or turns the methods of its impl block into
/// events. See `es_runtime` for the full description.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::run(args.into(), input.into()).into()
}

/// Declares a free-standing event type of an aggregate: `#[event(aggregate = Order)]`.
/// Inside an `#[aggregate] impl` block it marks a method as an event instead.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    event::run(args.into(), input.into()).into()
}
