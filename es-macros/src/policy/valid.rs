//! Validation of `#[policy]` / `#[projection]` impl blocks: every handler's shape.

use super::ast::{is_reset, strip_reset, Input};
use super::Kind;
use crate::common::{crate_path, snake_case, str_value, Ctx};
use quote::ToTokens;
use syn::{
    FnArg, GenericArgument, ImplItem, ImplItemFn, Item, ItemImpl, Path, PathArguments, ReturnType,
    Type,
};

/// How a handler takes its event.
pub enum Pass {
    /// `e: &T`: the payload.
    Payload,
    /// `e: &Event<T>`.
    EventRef,
    /// `e: Event<T>`.
    EventOwned,
}

pub struct Handler {
    pub method: syn::Ident,
    pub payload: Type,
    pub pass: Pass,
}

pub struct Model {
    pub kind: Kind,
    pub krate: Path,
    pub name: String,
    pub self_ty: Type,
    pub type_name: String,
    pub handlers: Vec<Handler>,
    pub reset: Option<syn::Ident>,
    pub item: ItemImpl,
}

const ARGS: &str = "expected `name = \"...\"` or `crate = \"...\"`";

pub fn validate(kind: Kind, input: &Input) -> syn::Result<Model> {
    let mut ctx = Ctx::default();
    if let Some(e) = &input.arg_error {
        ctx.syn(e.clone());
    }
    let mut krate = None;
    let mut name = None;
    for a in &input.args {
        match a.key.to_string().as_str() {
            "crate" => krate = str_value(a, &mut ctx),
            "name" => name = str_value(a, &mut ctx),
            _ => ctx.error(&a.key, format_args!("unknown argument `{}`: {ARGS}", a.key)),
        }
    }
    let krate = crate_path(krate.as_ref(), &mut ctx);
    let Item::Impl(item) = &input.item else {
        ctx.error(
            &input.item,
            format_args!(
                "{} goes on an impl block whose methods are handlers: `{} impl Orders {{ async fn on_created(..) }}`",
                kind.attr(),
                kind.attr()
            ),
        );
        return Err(finish(ctx));
    };
    if let Some((_, t, _)) = &item.trait_ {
        ctx.error(
            t,
            format_args!(
                "{} goes on an inherent impl block (`impl Orders {{ .. }}`), not on a trait impl",
                kind.attr()
            ),
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        ctx.error(
            &item.generics,
            format_args!(
                "{} cannot be on a generic impl: the system makes it by name, so its type must be concrete; hold generic parts behind a trait object (`Arc<dyn Client>`) in a field",
                kind.attr()
            ),
        );
    }
    let type_name = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => {
            ctx.error(
                other,
                format_args!("{} goes on the impl block of a named struct", kind.attr()),
            );
            String::new()
        }
    };
    let name = match name {
        Some(n)
            if n.value().is_empty()
                || n.value().contains(|c: char| c.is_whitespace() || c == '|') =>
        {
            ctx.error(
                &n,
                "the name is one word without spaces or `|`: `name = \"reservations\"`",
            );
            String::new()
        }
        Some(n) => n.value(),
        None => snake_case(&type_name),
    };
    let mut handlers: Vec<Handler> = Vec::new();
    let mut reset = None;
    for it in &item.items {
        let ImplItem::Fn(f) = it else {
            ctx.error(
                it,
                format_args!(
                    "only handler methods go in a {} impl block: move other items to a separate impl block",
                    kind.attr()
                ),
            );
            continue;
        };
        if f.attrs.iter().any(is_reset) {
            check_reset(kind, f, &mut ctx);
            reset = Some(f.sig.ident.clone());
            continue;
        }
        if let Some(h) = handler(kind, f, &mut ctx) {
            let key = type_key(&h.payload);
            if let Some(first) = handlers.iter().find(|o| type_key(&o.payload) == key) {
                ctx.error(
                    &h.payload,
                    format_args!(
                        "two handlers for `{key}` (`{}` and `{}`): an event type has one handler; do both things in one method",
                        first.method, h.method
                    ),
                );
            } else {
                handlers.push(h);
            }
        }
    }
    ctx.finish()?;
    let mut item = item.clone();
    strip_reset(&mut item.items);
    Ok(Model {
        kind,
        krate,
        name,
        self_ty: (*item.self_ty).clone(),
        type_name,
        handlers,
        reset,
        item,
    })
}

fn finish(ctx: Ctx) -> syn::Error {
    match ctx.finish() {
        Err(e) => e,
        Ok(()) => syn::Error::new(proc_macro2::Span::call_site(), "invalid input"),
    }
}

/// What a handler's signature looks like, for messages.
fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Policy => "`async fn on_created(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()>`",
        Kind::Projection => "`async fn on_created(&self, tx: &mut Tx, e: &Event<order::Created>) -> Result<()>`",
    }
}

/// Receiver, async, `Result` return: what every method needs.
fn check_common(kind: Kind, f: &ImplItemFn, ctx: &mut Ctx) {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        ctx.error(
            sig.fn_token,
            format_args!(
                "a handler is an `async fn`: write `async fn {}(..)`, like {} (move helper functions to a separate impl block)",
                sig.ident,
                example(kind)
            ),
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => ctx.error(
            r,
            "a handler takes `&self` (the state is shared between handlers running at once; use a `Mutex` field for state that changes)",
        ),
        _ => ctx.error(
            &sig.ident,
            format_args!("a handler takes `&self` first, like {}", example(kind)),
        ),
    }
    if !sig.generics.params.is_empty() {
        ctx.error(
            &sig.generics,
            "a handler cannot be generic: it handles one named event type",
        );
    }
    let returns_result = match &sig.output {
        ReturnType::Type(_, t) => match &**t {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    };
    if !returns_result {
        let msg = "a handler returns `Result<()>` (an error leaves the notification unprocessed): add `-> Result<()>` and end with `Ok(())`";
        match &sig.output {
            ReturnType::Type(_, t) => ctx.error(t, msg),
            ReturnType::Default => ctx.error(&sig.ident, msg),
        }
    }
}

fn check_reset(kind: Kind, f: &ImplItemFn, ctx: &mut Ctx) {
    if kind == Kind::Policy {
        ctx.error(
            &f.sig.ident,
            "`#[reset]` is for projections (it empties their tables before a rebuild); a policy is never replayed",
        );
        return;
    }
    check_common(kind, f, ctx);
    if f.sig.inputs.len() != 2 {
        ctx.error(
            &f.sig.inputs,
            "the `#[reset]` method takes `&self` and the transaction: `async fn clear(&self, tx: &mut Tx) -> Result<()>`",
        );
    }
}

fn handler(kind: Kind, f: &ImplItemFn, ctx: &mut Ctx) -> Option<Handler> {
    check_common(kind, f, ctx);
    let sig = &f.sig;
    let args: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (what, kind_ty) = match kind {
        Kind::Policy => ("context", "`&mut ProcessContext`"),
        Kind::Projection => ("transaction", "`&mut Tx`"),
    };
    match args.len() {
        2 => {}
        0 | 1 => {
            ctx.error(
                &sig.ident,
                format_args!(
                    "handler `{}` has no event argument: it takes the {what} and the event it handles, like {}",
                    sig.ident,
                    example(kind)
                ),
            );
            return None;
        }
        _ => {
            ctx.error(
                &args[2].ty,
                format_args!(
                    "a handler takes two arguments, the {what} and the event, like {}",
                    example(kind)
                ),
            );
            return None;
        }
    }
    if !matches!(&*args[0].ty, Type::Reference(_)) {
        ctx.error(
            &args[0].ty,
            format_args!("the first argument is the {what}: {kind_ty}"),
        );
    }
    let ty = &*args[1].ty;
    let (payload, pass) = match ty {
        Type::Reference(r) => match event_arg(&r.elem) {
            Some(p) => (p, Pass::EventRef),
            None => ((*r.elem).clone(), Pass::Payload),
        },
        other => match event_arg(other) {
            Some(p) => (p, Pass::EventOwned),
            None => {
                ctx.error(
                    other,
                    "the event argument is `&T`, `&Event<T>` or `Event<T>`, where `T` is an event type (`order::Created`)",
                );
                return None;
            }
        },
    };
    Some(Handler {
        method: sig.ident.clone(),
        payload,
        pass,
    })
}

/// `T` of `Event<T>` (any path ending in `Event`).
fn event_arg(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Event" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first()? {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A type as written, without the token spacing (`order::Created`), to compare and show.
fn type_key(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" :: ", "::")
        .replace(" < ", "<")
        .replace(" >", ">")
}
