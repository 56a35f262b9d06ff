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

/// Makes a struct an event-sourced aggregate (state plus bookkeeping, `#[attribute]` setters),
/// or, on its impl block, turns each `#[event(Name)]` method into an event type whose fields are
/// the method's arguments and whose mutation is the method's body.
///
/// On the struct: `#[aggregate]`, `#[aggregate(topic = "...", crate = "...")]`; on its fields
/// `#[attribute]` (setter `set_<field>`) or `#[attribute(setter = "name")]`.
/// On the impl block: `#[aggregate]`, `#[aggregate(events = "module_name", crate = "...")]`.
/// The full guide, with a runnable example, is the documentation of `es_runtime::domain`.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::run(args.into(), input.into()).into()
}

/// Declares a free-standing event type of an aggregate, applied through the user's
/// `impl Mutate<Aggregate>`: `#[event(aggregate = Order)]`, with optional `topic = "..."`,
/// `version = N` and `upcast = path`, `kind = Logged`, `crate = "..."`.
///
/// Inside an `#[aggregate]` impl block, `#[event(Name)]` marks a method as an event instead (see
/// [`macro@aggregate`]). The full guide is the documentation of `es_runtime::domain`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    event::run(args.into(), input.into()).into()
}
