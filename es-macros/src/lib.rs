//! Procedural macros of es: `#[aggregate]`, `#[event]`, `#[policy]` and `#[projection]`.
//!
//! Use them through `es-runtime`, which re-exports them (`use es_runtime::prelude::*;`); the
//! generated code names only `::es_runtime::__private` (or the path given with
//! `crate = "..."`), `::core` and `::std`. Each macro is split into `ast` (parse, keep the
//! user's tokens for spans), `valid` (check, collecting every error) and `expand` (generate).

mod aggregate;
mod common;
mod event;
mod policy;

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

/// Makes the methods of an impl block the handlers of a process application's policy: each is
/// `async fn name(&self, ctx: &mut ProcessContext, e: &Event<T>) -> Result<()>` (or `e: &T`,
/// `e: Event<T>`) for one event type `T`. Implements `es_runtime::process::PolicyType` (the
/// dispatch by topic; events without a handler are tracked and skipped) and registers the
/// type under its name, so that a system's pipelines can name it: `#[policy(name =
/// "reservations")]`, by default the type's name in snake case; `crate = "..."` as for
/// `#[aggregate]`. The type implements `Default` (what a system makes when it names it).
/// The guide is the documentation of `es_runtime::process`.
#[proc_macro_attribute]
pub fn policy(args: TokenStream, input: TokenStream) -> TokenStream {
    policy::run(policy::Kind::Policy, args.into(), input.into()).into()
}

/// Makes the methods of an impl block the handlers of a projection: each is
/// `async fn name(&self, tx: &mut Tx, e: &Event<T>) -> Result<()>` (or `e: &T`,
/// `e: Event<T>`) writing rows for one event type `T` in the backend's transaction; an
/// optional `#[reset] async fn clear(&self, tx: &mut Tx) -> Result<()>` empties the tables
/// before a rebuild. Implements `es_runtime::process::projection::Projection`; `name = "..."`
/// (default: the type's name in snake case) is the name its tracking records are kept under.
/// The guide is the documentation of `es_runtime::process::projection`.
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    policy::run(policy::Kind::Projection, args.into(), input.into()).into()
}
