//! Validation: checks the item and arguments, collecting every error, and builds the model that
//! expansion turns into code (expansion never reports user errors).

use super::ast::{self_ident, Input};
use crate::common::{
    self, camel_case, check_deterministic, check_owned, snake_case, str_value, Ctx,
};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, ItemStruct, LitStr, Pat, Path, Type};

/// A validated `#[aggregate]` item.
pub enum Model {
    Struct(StructModel),
    Impl(ImplModel),
}

pub struct StructModel {
    pub krate: Path,
    pub topic: Option<LitStr>,
    pub item: ItemStruct,
    /// `#[attribute]` fields: name, type and the name of the generated setter.
    pub attributes: Vec<(Ident, Type, Ident)>,
}

pub struct ImplModel {
    pub krate: Path,
    pub name: Ident,
    pub module: Ident,
    pub item: ItemImpl,
    pub events: Vec<EventMethod>,
}

pub struct EventMethod {
    /// The event type's name.
    pub name: Ident,
    pub topic: Option<LitStr>,
    /// A constructor (no receiver, returns the aggregate): a Created-kind event.
    pub created: bool,
    /// The method as written, without `#[event]`.
    pub method: ImplItemFn,
    /// The arguments: name and type.
    pub fields: Vec<(Ident, Type)>,
}

pub fn validate(input: &Input) -> syn::Result<Model> {
    match input {
        Input::Struct {
            args,
            item,
            arg_error,
        } => {
            let mut ctx = Ctx::default();
            let (krate, topic) = read_args(args, &STRUCT_ARGS, &mut ctx);
            let krate = common::crate_path(krate.as_ref(), &mut ctx);
            let s = validate_struct(item, &mut ctx, krate, topic);
            if let Some(e) = arg_error {
                ctx.syn(e.clone());
            }
            ctx.finish()?;
            Ok(Model::Struct(s))
        }
        Input::Impl {
            args,
            item,
            arg_error,
        } => {
            let mut ctx = Ctx::default();
            let (krate, module) = read_args(args, &IMPL_ARGS, &mut ctx);
            let krate = common::crate_path(krate.as_ref(), &mut ctx);
            let m = validate_impl(item, &mut ctx, krate, module);
            if let Some(e) = arg_error {
                ctx.syn(e.clone());
            }
            ctx.finish()?;
            m.map(Model::Impl)
                .ok_or_else(|| syn::Error::new(item.span(), "invalid aggregate impl"))
        }
        Input::Other { item } => {
            let (tokens, what) = match item {
                syn::Item::Enum(e) => {
                    let (k, i) = (&e.enum_token, &e.ident);
                    (quote::quote!(#k #i), "an enum")
                }
                syn::Item::Union(u) => {
                    let (k, i) = (&u.union_token, &u.ident);
                    (quote::quote!(#k #i), "a union")
                }
                syn::Item::Fn(f) => {
                    let sig = &f.sig;
                    (quote::quote!(#sig), "a function")
                }
                other => (quote::quote!(#other), "this item"),
            };
            Err(syn::Error::new_spanned(
                tokens,
                format_args!("`#[aggregate]` cannot be used on {what}: put it on a struct with named fields (the state) and on its impl block (the events)"),
            ))
        }
    }
}

/// The arguments `#[aggregate]` takes on one kind of item: `crate`, and one of its own.
struct ArgSpec {
    /// The argument only this kind of item takes.
    own: &'static str,
    /// The argument that belongs on the other kind of item, and why it is refused here.
    misplaced: (&'static str, &'static str),
    /// The message for an unknown argument (`{}` is its name).
    unknown: &'static str,
}

const STRUCT_ARGS: ArgSpec = ArgSpec {
    own: "topic",
    misplaced: (
        "events",
        "`events` belongs on the `#[aggregate]` impl block, not on the struct",
    ),
    unknown: "for `#[aggregate]` on a struct: expected `topic = \"...\"` or `crate = \"...\"`",
};

const IMPL_ARGS: ArgSpec = ArgSpec {
    own: "events",
    misplaced: (
        "topic",
        "`topic` belongs on the `#[aggregate]` struct, not on the impl block",
    ),
    unknown: "for `#[aggregate]` on an impl block: expected `events = \"module_name\"` or `crate = \"...\"`",
};

/// Reads `crate` and the item's own argument, reporting misplaced and unknown ones.
fn read_args(
    args: &[common::Arg],
    spec: &ArgSpec,
    ctx: &mut Ctx,
) -> (Option<LitStr>, Option<LitStr>) {
    let (mut krate, mut own) = (None, None);
    for a in args {
        let key = a.key.to_string();
        if key == "crate" {
            krate = str_value(a, ctx);
        } else if key == spec.own {
            own = str_value(a, ctx);
        } else if key == spec.misplaced.0 {
            ctx.error(&a.key, spec.misplaced.1);
        } else {
            ctx.error(
                &a.key,
                format_args!("unknown argument `{key}` {}", spec.unknown),
            );
        }
    }
    (krate, own)
}

fn validate_struct(
    item: &ItemStruct,
    ctx: &mut Ctx,
    krate: Path,
    topic: Option<LitStr>,
) -> StructModel {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        ctx.error(
            &item.generics,
            "generic aggregates are not supported: each event type belongs to one concrete aggregate type; remove the type parameters",
        );
    }
    let mut attributes = Vec::new();
    let named = matches!(item.fields, syn::Fields::Named(_) | syn::Fields::Unit);
    if !named {
        let (k, i) = (&item.struct_token, &item.ident);
        ctx.error(
            quote::quote!(#k #i),
            "`#[aggregate]` needs a struct with named fields: write `struct Name { field: Type, .. }`",
        );
    }
    for f in item.fields.iter() {
        if f.ident.as_ref().is_some_and(|i| i == "__es_meta") {
            ctx.error(
                &f.ident,
                "`__es_meta` is the name of the field `#[aggregate]` adds: rename this field",
            );
        }
        for a in f.attrs.iter().filter(|a| a.path().is_ident("attribute")) {
            let setter = attribute_setter(a, ctx);
            match &f.ident {
                Some(i) => {
                    let setter = setter.unwrap_or_else(|| quote::format_ident!("set_{}", i));
                    attributes.push((i.clone(), f.ty.clone(), setter));
                }
                None => ctx.error(
                    a,
                    "`#[attribute]` needs a named field, because its setter is named after the field (`set_<name>`): use a struct with named fields",
                ),
            }
        }
    }
    for (k, (field, _, setter)) in attributes.iter().enumerate() {
        if let Some((other, _, _)) = attributes[..k].iter().find(|(_, _, s)| s == setter) {
            let msg = if other == field {
                format!("`#[attribute]` is given twice on `{field}`: keep one")
            } else {
                format!(
                    "two `#[attribute]` fields, `{other}` and `{field}`, would both have the setter `{setter}`: name one with `#[attribute(setter = \"...\")]`"
                )
            };
            ctx.error(setter, msg);
        }
    }
    let mut item = item.clone();
    for f in item.fields.iter_mut() {
        f.attrs.retain(|a| !a.path().is_ident("attribute"));
    }
    StructModel {
        krate,
        topic,
        item,
        attributes,
    }
}

/// The setter name `#[attribute(setter = "name")]` gives, if any; `#[attribute]` gives none.
fn attribute_setter(a: &syn::Attribute, ctx: &mut Ctx) -> Option<Ident> {
    const EXPECTED: &str =
        "expected `#[attribute]` or `#[attribute(setter = \"set_name\")]` (the setter's name)";
    let list = match &a.meta {
        syn::Meta::Path(_) => return None,
        syn::Meta::List(list) => list,
        syn::Meta::NameValue(nv) => {
            ctx.error(nv, format_args!("unexpected `=` value: {EXPECTED}"));
            return None;
        }
    };
    let args = match list.parse_args_with(
        syn::punctuated::Punctuated::<syn::MetaNameValue, syn::Token![,]>::parse_terminated,
    ) {
        Ok(args) => args,
        Err(e) => {
            ctx.error_at(e.span(), format_args!("{e}: {EXPECTED}"));
            return None;
        }
    };
    let mut setter = None;
    for arg in &args {
        if !arg.path.is_ident("setter") {
            ctx.error(&arg.path, format_args!("unknown argument: {EXPECTED}"));
            continue;
        }
        if setter.is_some() {
            ctx.error(arg, "`setter` is given twice: keep one");
            continue;
        }
        let lit = match &arg.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(l),
                ..
            }) => l,
            other => {
                ctx.error(
                    other,
                    "`setter` takes a string: write `setter = \"set_name\"`",
                );
                continue;
            }
        };
        match syn::parse_str::<Ident>(&lit.value()) {
            Ok(i) => setter = Some(Ident::new(&i.to_string(), lit.span())),
            Err(_) => ctx.error(
                lit,
                format_args!(
                    "`setter` must be a method name (a Rust identifier, not a keyword), got {:?}",
                    lit.value()
                ),
            ),
        }
    }
    if args.is_empty() {
        ctx.error(list, format_args!("empty argument list: {EXPECTED}"));
    }
    setter
}

fn validate_impl(
    item: &ItemImpl,
    ctx: &mut Ctx,
    krate: Path,
    module: Option<LitStr>,
) -> Option<ImplModel> {
    if let Some((_, path, _)) = &item.trait_ {
        ctx.error(
            path,
            "`#[aggregate]` goes on the aggregate's own impl block (`impl World { .. }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        ctx.error(
            &item.generics,
            "generic aggregates are not supported: each event type belongs to one concrete aggregate type; remove the type parameters",
        );
    }
    let name = self_ident(item);
    if name.is_none() {
        ctx.error(
            &item.self_ty,
            "`#[aggregate]` needs the aggregate's name here: `impl World { .. }`",
        );
    }
    let module = match module {
        Some(m) => match m.parse::<Ident>() {
            Ok(i) => Some(i),
            Err(_) => {
                ctx.error(
                    &m,
                    "`events` takes a module name: `events = \"world_events\"`",
                );
                None
            }
        },
        None => name
            .as_ref()
            .map(|n| Ident::new(&snake_case(&n.to_string()), n.span())),
    };

    let mut events: Vec<EventMethod> = Vec::new();
    let mut seen: Vec<Ident> = Vec::new();
    let mut plain = item.clone();
    plain.items.clear();
    for it in &item.items {
        let attrs = match it {
            ImplItem::Fn(f) => &f.attrs,
            ImplItem::Const(c) => &c.attrs,
            ImplItem::Type(t) => &t.attrs,
            _ => {
                plain.items.push(it.clone());
                continue;
            }
        };
        let event_attrs: Vec<_> = attrs
            .iter()
            .filter(|a| a.path().is_ident("event"))
            .collect();
        if event_attrs.is_empty() {
            plain.items.push(it.clone());
            continue;
        }
        let ImplItem::Fn(f) = it else {
            ctx.error(event_attrs[0], "`#[event]` goes on a method: its arguments become the event's fields, its body the mutation");
            continue;
        };
        if event_attrs.len() > 1 {
            ctx.error(
                event_attrs[1],
                "a method can trigger only one event: remove the extra `#[event]`",
            );
        }
        if let Some(ev) = validate_event_method(f, event_attrs[0], name.as_ref(), ctx) {
            if let Some(prev) = seen.iter().find(|p| **p == ev.name) {
                ctx.error(
                    &ev.name,
                    format_args!("duplicate event name `{prev}` in this aggregate: give each event its own name, e.g. `#[event({prev}Again)]`"),
                );
            }
            seen.push(ev.name.clone());
            events.push(ev);
        }
    }
    if !events.iter().any(|e| e.created) {
        ctx.error(
            &item.self_ty,
            "this aggregate has no created event: mark a constructor with `#[event(Created)]`, e.g. `#[event(Created)] pub fn create(..) -> Self { .. }`",
        );
    }
    Some(ImplModel {
        krate,
        name: name?,
        module: module?,
        item: plain,
        events,
    })
}

fn validate_event_method(
    f: &ImplItemFn,
    attr: &syn::Attribute,
    aggregate: Option<&Ident>,
    ctx: &mut Ctx,
) -> Option<EventMethod> {
    let mut name = None;
    let mut topic = None;
    let args = match &attr.meta {
        syn::Meta::Path(_) => Vec::new(),
        _ => match attr.parse_args_with(
            syn::punctuated::Punctuated::<common::Arg, syn::Token![,]>::parse_terminated,
        ) {
            Ok(p) => p.into_iter().collect(),
            Err(e) => {
                ctx.syn(e);
                Vec::new()
            }
        },
    };
    for (i, a) in args.iter().enumerate() {
        match (a.key.to_string().as_str(), &a.value) {
            ("topic", _) => topic = str_value(a, ctx),
            (_, None) if i == 0 => name = Some(a.key.clone()),
            (other, _) => ctx.error(
                &a.key,
                format_args!("unknown argument `{other}` for `#[event]` on a method: expected the event's name first, then optionally `topic = \"...\"`, e.g. `#[event(Moved, topic = \"...\")]`"),
            ),
        }
    }
    let sig = &f.sig;
    let receiver = sig.receiver();
    let created = receiver.is_none();
    if let Some(r) = receiver {
        if r.reference.is_none() || r.mutability.is_none() {
            ctx.error(
                r,
                "an event method needs `&mut self`: its body is the mutation applied to the aggregate (or take no `self` and return `Self` for a created event)",
            );
        }
        if !matches!(sig.output, syn::ReturnType::Default) {
            ctx.error(
                &sig.output,
                "an event method cannot return a value, because its body is replayed as the event's mutation: remove the return type (the generated method returns `Result<()>`)",
            );
        }
    } else {
        let returns_self = match &sig.output {
            syn::ReturnType::Type(_, ty) => match &**ty {
                Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                    let i = &p.path.segments[0].ident;
                    i == "Self" || aggregate.is_some_and(|a| a == i)
                }
                _ => false,
            },
            syn::ReturnType::Default => false,
        };
        if !returns_self {
            let at: proc_macro2::TokenStream = match &sig.output {
                syn::ReturnType::Default => quote::quote!(#sig),
                out => quote::quote!(#out),
            };
            ctx.error(
                at,
                "a created event method (no `self`) must return `Self`: its body builds the aggregate's first state, e.g. `fn create(..) -> Self { Self { .. } }`",
            );
        }
    }
    if let Some(a) = &sig.asyncness {
        ctx.error(
            a,
            "an event method cannot be `async`: mutations are replayed synchronously",
        );
    }
    if let Some(c) = &sig.constness {
        ctx.error(c, "an event method cannot be `const`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        ctx.error(&sig.generics, "an event method cannot be generic: its arguments become the stored fields of one event type");
    }
    let mut fields = Vec::new();
    for input in sig.inputs.iter() {
        let FnArg::Typed(pt) = input else { continue };
        match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                fields.push((pi.ident.clone(), (*pt.ty).clone()));
            }
            other => ctx.error(
                other,
                "use a plain name for an event method's argument: it becomes the event's field",
            ),
        }
        check_owned(&pt.ty, ctx);
        check_deterministic(&pt.ty, ctx);
    }
    let name = match name {
        Some(n) => n,
        None if created => Ident::new("Created", f.sig.ident.span()),
        None => Ident::new(&camel_case(&f.sig.ident.to_string()), f.sig.ident.span()),
    };
    let mut method = f.clone();
    method.attrs.retain(|a| !a.path().is_ident("event"));
    Some(EventMethod {
        name,
        topic,
        created,
        method,
        fields,
    })
}
