//! Validation of `#[event(..)]` on a struct.

use super::ast::Input;
use crate::common::{self, check_deterministic, check_owned, path_value, str_value, Ctx};
use proc_macro2::Span;
use syn::{Expr, ItemStruct, Lit, LitStr, Path};

pub enum Kind {
    Custom,
    Logged,
}

pub struct Model {
    pub krate: Path,
    pub aggregate: Path,
    pub topic: Option<LitStr>,
    pub version: u32,
    pub upcast: Option<Path>,
    pub kind: Kind,
    pub item: ItemStruct,
}

const ARGS: &str = "expected `aggregate = Type`, `topic = \"...\"`, `version = N`, `upcast = path::to::fn`, `kind = Logged` or `crate = \"...\"`";

pub fn validate(input: &Input) -> syn::Result<Model> {
    let mut ctx = Ctx::default();
    if let Some(e) = &input.arg_error {
        ctx.syn(e.clone());
    }
    let item = match &input.item {
        syn::Item::Struct(s) => Some(s),
        syn::Item::Fn(f) => {
            ctx.error(
                &f.sig,
                "`#[event]` on a method works only inside an `#[aggregate]` impl block: add `#[aggregate]` to the impl",
            );
            None
        }
        other => {
            ctx.error(
                other,
                "`#[event]` goes on a struct (`#[event(aggregate = Order)] pub struct Reserved { .. }`) or on a method of an `#[aggregate]` impl block",
            );
            None
        }
    };
    let mut krate = None;
    let mut aggregate = None;
    let mut topic = None;
    let mut version = 1u32;
    let mut upcast = None;
    let mut version_span = None;
    let mut kind = Kind::Custom;
    // On a method, the arguments are an event name meant for `#[aggregate]`: no more errors.
    let args: &[common::Arg] = if item.is_some() { &input.args } else { &[] };
    for a in args {
        match a.key.to_string().as_str() {
            "crate" => krate = str_value(a, &mut ctx),
            "aggregate" => aggregate = path_value(a, &mut ctx, "aggregate = Order"),
            "topic" => topic = str_value(a, &mut ctx),
            "upcast" => upcast = path_value(a, &mut ctx, "upcast = upcast_reserved"),
            "version" => match &a.value {
                Some(Expr::Lit(l)) => match &l.lit {
                    Lit::Int(i) => match i.base10_parse::<u32>() {
                        Ok(v) if v >= 1 => {
                            version = v;
                            version_span = Some(i.span());
                        }
                        _ => ctx.error(i, "`version` is a schema version starting at 1: `version = 2`"),
                    },
                    other => ctx.error(other, "`version` takes a number: `version = 2`"),
                },
                _ => ctx.error(&a.key, "`version` takes a number: `version = 2`"),
            },
            "kind" => match path_value(a, &mut ctx, "kind = Logged") {
                Some(p) if p.is_ident("Logged") => kind = Kind::Logged,
                Some(p) if p.is_ident("Custom") => kind = Kind::Custom,
                Some(p) if p.is_ident("Created") => ctx.error(
                    p,
                    "a free-standing event cannot be a created event: declare it with `#[event(Created)]` on a constructor in the `#[aggregate]` impl block",
                ),
                Some(p) => ctx.error(p, "`kind` is `Logged` or `Custom` (the default)"),
                None => {}
            },
            other => ctx.error(&a.key, format_args!("unknown argument `{other}` for `#[event]`: {ARGS}")),
        }
    }
    if item.is_some() && aggregate.is_none() && input.arg_error.is_none() {
        ctx.error_at(
            Span::call_site(),
            "`#[event]` on a struct needs the aggregate it belongs to: write `#[event(aggregate = YourAggregate)]`",
        );
    }
    if version > 1 && upcast.is_none() {
        ctx.error_at(
            version_span.unwrap_or_else(Span::call_site),
            "events stored with older schema versions must be upcast: add `upcast = my_fn` where `fn my_fn(from_version: u32, data: &mut es_runtime::domain::event::JsonValue) -> es_runtime::Result<()>`",
        );
    }
    let krate = common::crate_path(krate.as_ref(), &mut ctx);
    if let Some(s) = item {
        if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
            ctx.error(&s.generics, "event types cannot be generic: each has one stable topic; remove the type parameters");
        }
        if let syn::Fields::Unnamed(u) = &s.fields {
            ctx.error(u, "event fields need names (they are stored by name): write `struct Name { field: Type }`");
        }
        for f in s.fields.iter() {
            check_owned(&f.ty, &mut ctx);
            check_deterministic(&f.ty, &mut ctx);
        }
    }
    ctx.finish()?;
    let item = item
        .cloned()
        .ok_or_else(|| syn::Error::new(Span::call_site(), "expected a struct"))?;
    let aggregate =
        aggregate.ok_or_else(|| syn::Error::new(Span::call_site(), "missing aggregate"))?;
    Ok(Model {
        krate,
        aggregate,
        topic,
        version,
        upcast,
        kind,
        item,
    })
}
