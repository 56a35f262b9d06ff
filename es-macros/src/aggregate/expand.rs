//! Code generation for `#[aggregate]` (never reports user errors: validation did).

use super::ast::InjectMeta;
use super::valid::{EventMethod, ImplModel, Model, StructModel};
use crate::common::{derives, docs};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;
use syn::{FnArg, ImplItem, Pat};

pub fn expand(model: Model) -> TokenStream {
    match model {
        Model::Struct(s) => expand_struct(s),
        Model::Impl(i) => expand_impl(i),
    }
}

fn expand_struct(m: StructModel) -> TokenStream {
    let StructModel {
        krate,
        topic,
        mut item,
        attributes,
    } = m;
    let p = quote!(#krate::__private);
    let name = item.ident.clone();
    let vis = item.vis.clone();
    // Each field's type must be serde-serialisable (snapshots): checked first, where the field
    // is declared, so that its message comes before any of serde's. Fields with serde
    // attributes of their own (`#[serde(skip)]`, `with`, ...) are the user's business.
    let state_checks = item
        .fields
        .iter()
        .filter(|f| !f.attrs.iter().any(|a| a.path().is_ident("serde")))
        .map(|f| {
            let t = &f.ty;
            quote::quote_spanned! {syn::spanned::Spanned::span(t)=>
                #p::assert_state_field::<#t>();
            }
        });
    let state_checks = quote! { const _: () = { #(#state_checks)* }; };
    // The twin of the user's fields that struct literals in the impl block build (see
    // `InjectMeta`): the same names, types and visibilities, without the bookkeeping.
    let twin = format_ident!("__EsFieldsOf{}", name);
    let twin_fields: Vec<_> = item
        .fields
        .iter()
        .filter_map(|f| f.ident.as_ref().map(|i| (&f.vis, i, &f.ty)))
        .collect();
    let twin_decl = twin_fields.iter().map(|(v, i, t)| quote!(#v #i: #t));
    let twin_names: Vec<_> = twin_fields.iter().map(|(_, i, _)| *i).collect();
    let twin = quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #twin { #(#twin_decl),* }

        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl #p::Construct for #name {
            type Fields = #twin;
            fn construct(fields: #twin) -> Self {
                let #twin { #(#twin_names),* } = fields;
                #name { __es_meta: #p::Default::default(), #(#twin_names),* }
            }
        }
    };
    let meta_field: syn::Field = syn::parse_quote! {
        #[serde(skip)]
        #[doc(hidden)]
        __es_meta: #p::AggregateMeta
    };
    match &mut item.fields {
        syn::Fields::Named(n) => n.named.insert(0, meta_field),
        fields => {
            *fields = syn::Fields::Named(syn::parse_quote!({ #meta_field }));
            item.semi_token = None;
        }
    }
    let derive = derives(&item.attrs, &krate, false);
    let name_str = name.to_string();
    let (t, ac, d) = match &topic {
        Some(t) => (
            quote!(#t),
            quote!(#p::topic_concat!(#t, "AttributeChanged")),
            quote!(#p::topic_concat!(#t, "Discarded")),
        ),
        None => (
            quote!(::core::concat!(::core::module_path!(), "::", #name_str)),
            quote!(::core::concat!(::core::module_path!(), "::", #name_str, ".AttributeChanged")),
            quote!(::core::concat!(::core::module_path!(), "::", #name_str, ".Discarded")),
        ),
    };
    let arms = attributes.iter().map(|(field, ty, _)| {
        let s = field.to_string();
        quote! {
            #s => {
                self.#field = #p::serde_json::from_value::<#ty>(value).map_err(|e| {
                    #p::Error::Encoding(::std::format!("attribute {} of {}: {}", #s, <Self as #p::Aggregate>::TOPIC, e))
                })?;
                ::core::result::Result::Ok(())
            }
        }
    });
    let setters = attributes.iter().map(|(field, ty, setter)| {
        let s = field.to_string();
        let doc = format!(
            "Sets `{s}`: triggers an `AttributeChanged` event (name `\"{s}\"`) and applies it. Fails with `Error::EntityIsDiscarded` once the aggregate is discarded."
        );
        quote! {
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn #setter(&mut self, value: #ty) -> #p::Result<()> {
                let value = #p::serde_json::to_value(&value)?;
                #p::trigger(self, #p::AttributeChanged::<Self>::new(#s, value))
            }
        }
    });
    let ac_name = format!("AttributeChanged<{name_str}>");
    let d_name = format!("Discarded<{name_str}>");
    quote! {
        #state_checks

        #derive
        #item

        #twin

        const _: () = {
            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl #p::Aggregate for #name {
                const TOPIC: &'static str = #t;
                const ATTRIBUTE_CHANGED_TOPIC: &'static str = #ac;
                const DISCARDED_TOPIC: &'static str = #d;
                fn meta(&self) -> &#p::AggregateMeta {
                    &self.__es_meta
                }
                fn meta_mut(&mut self) -> &mut #p::AggregateMeta {
                    &mut self.__es_meta
                }
                fn set_attribute_value(&mut self, name: &str, value: #p::serde_json::Value) -> #p::Result<()> {
                    let _ = &value;
                    match name {
                        #(#arms)*
                        _ => ::core::result::Result::Err(#p::Error::UnknownAttribute {
                            aggregate: <Self as #p::Aggregate>::TOPIC,
                            name: ::std::string::ToString::to_string(name),
                        }),
                    }
                }
            }

            #[automatically_derived]
            impl #name {
                #(#setters)*
            }

            #p::inventory::submit! {
                #p::EventType::of::<#p::AttributeChanged<#name>>(
                    ::core::concat!(::core::module_path!(), "::", #ac_name),
                )
            }
            #p::inventory::submit! {
                #p::EventType::of::<#p::Discarded<#name>>(
                    ::core::concat!(::core::module_path!(), "::", #d_name),
                )
            }
        };
    }
}

fn expand_impl(m: ImplModel) -> TokenStream {
    let ImplModel {
        krate,
        name,
        module,
        mut item,
        events,
    } = m;
    let p = quote!(#krate::__private);
    InjectMeta {
        name: &name,
        default: quote!(#p::Default::default()),
        construct: Some(p.clone()),
    }
    .visit_item_impl_mut(&mut item);

    // The module takes the created method's visibility (a public constructor means a public
    // aggregate whose events other crates name); its items are as visible as the module.
    let mod_vis = events
        .iter()
        .find(|e| e.created)
        .map(|e| e.method.vis.clone())
        .unwrap_or(syn::Visibility::Inherited);
    let item_vis: TokenStream = match &mod_vis {
        syn::Visibility::Public(_) => quote!(pub),
        syn::Visibility::Inherited => quote!(pub(super)),
        syn::Visibility::Restricted(_) => quote!(pub(crate)),
    };
    let mut payloads = Vec::new();
    for ev in &events {
        let (wrappers, payload) = expand_event(ev, &name, &module, &p, &item_vis);
        let mut method = ev.method.clone();
        InjectMeta {
            name: &name,
            default: quote!(#p::Default::default()),
            construct: Some(p.clone()),
        }
        .visit_impl_item_fn_mut(&mut method);
        // The user's body moves into a hidden method, called by the payload's mutation.
        let hidden = format_ident!("__es_event_{}", method.sig.ident);
        method.sig.ident = hidden;
        method.vis = syn::Visibility::Inherited;
        method.attrs.retain(|a| !a.path().is_ident("doc"));
        method.attrs.insert(0, syn::parse_quote!(#[doc(hidden)]));
        item.items.push(ImplItem::Fn(method));
        item.items.extend(wrappers);
        payloads.push(payload);
    }
    let mod_doc = format!("The events of [`{name}`](super::{name}) (generated by `#[aggregate]`).");
    let ac_doc = format!("`{name}`'s built-in event: an `#[attribute]` field was set.");
    let d_doc = format!("`{name}`'s built-in event: the aggregate was discarded.");
    quote! {
        #item

        #[doc = #mod_doc]
        #mod_vis mod #module {
            #[allow(unused_imports)]
            use super::*;

            #[doc = #ac_doc]
            #[allow(dead_code)]
            #item_vis type AttributeChanged = #p::AttributeChanged<super::#name>;
            #[doc = #d_doc]
            #[allow(dead_code)]
            #item_vis type Discarded = #p::Discarded<super::#name>;

            #(#payloads)*
        }
    }
}

/// The public command method(s) replacing an event method, and the event's payload type.
fn expand_event(
    ev: &EventMethod,
    aggregate: &syn::Ident,
    module: &syn::Ident,
    p: &TokenStream,
    vis_in_module: &TokenStream,
) -> (Vec<ImplItem>, TokenStream) {
    let EventMethod {
        name,
        topic,
        created,
        method,
        fields,
    } = ev;
    let user_docs = docs(&method.attrs);
    let other_attrs: Vec<_> = method
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("doc") && !a.path().is_ident("inline"))
        .collect();
    let vis = &method.vis;
    let ident = &method.sig.ident;
    let hidden = format_ident!("__es_event_{}", ident);
    let field_names: Vec<_> = fields.iter().map(|(n, _)| n).collect();
    let field_types: Vec<_> = fields.iter().map(|(_, t)| t).collect();
    // Arguments without `mut` (the hidden method keeps the user's patterns).
    let params = method.sig.inputs.iter().filter_map(|a| match a {
        FnArg::Typed(pt) => match &*pt.pat {
            Pat::Ident(pi) => {
                let (n, t) = (&pi.ident, &pt.ty);
                Some(quote!(#n: #t))
            }
            _ => None,
        },
        FnArg::Receiver(_) => None,
    });
    let params: Vec<_> = params.collect();
    let mut wrappers = Vec::new();
    let kind;
    let apply;
    if *created {
        let with_id = format_ident!("{}_with_id", ident);
        let id = if field_names.iter().any(|n| *n == "id") {
            format_ident!("aggregate_id")
        } else {
            format_ident!("id")
        };
        let with_id_doc =
            format!("Like [`Self::{ident}`], with the given id instead of a new random (v4) one.");
        wrappers.push(syn::parse_quote! {
            #(#user_docs)*
            #(#other_attrs)*
            #vis fn #ident(#(#params),*) -> #p::Result<Self> {
                Self::#with_id(#p::Uuid::new_v4(), #(#field_names),*)
            }
        });
        wrappers.push(syn::parse_quote! {
            #[doc = #with_id_doc]
            #[allow(dead_code)]
            #vis fn #with_id(#id: #p::Uuid, #(#params),*) -> #p::Result<Self> {
                #p::create(#id, self::#module::#name { #(#field_names),* })
            }
        });
        kind = quote!(#p::EventKind::Created);
        apply = quote! {
            fn construct(self) -> #p::Result<super::#aggregate> {
                let #name { #(#field_names),* } = self;
                ::core::result::Result::Ok(super::#aggregate::#hidden(#(#field_names),*))
            }
        };
    } else {
        wrappers.push(syn::parse_quote! {
            #(#user_docs)*
            #(#other_attrs)*
            #vis fn #ident(&mut self, #(#params),*) -> #p::Result<()> {
                #p::trigger(self, self::#module::#name { #(#field_names),* })
            }
        });
        kind = quote!(#p::EventKind::Custom);
        apply = quote! {
            fn mutate(self, aggregate: &mut super::#aggregate) -> #p::Result<()> {
                let #name { #(#field_names),* } = self;
                aggregate.#hidden(#(#field_names),*);
                ::core::result::Result::Ok(())
            }
        };
    }
    let name_str = name.to_string();
    let topic = match topic {
        Some(t) => quote!(#t),
        None => quote!(#p::topic_concat!(<super::#aggregate as #p::Aggregate>::TOPIC, #name_str)),
    };
    let doc = if user_docs.is_empty() {
        let d = format!("Event of `{aggregate}`, triggered by `{ident}`.");
        vec![syn::parse_quote!(#[doc = #d])]
    } else {
        user_docs
    };
    let field_docs = field_names
        .iter()
        .map(|n| format!("Argument `{n}` of `{ident}`."));
    let krate_serde = {
        let s = format!("{}::serde", p).replace(' ', "");
        quote!(#[serde(crate = #s)])
    };
    // Serialised through helpers bounded by `EventField`, so that an unsuitable type gets that
    // trait's message (once per field and direction) instead of serde's generic ones.
    // An `Option` field keeps serde's reading of a missing field as `None` (older events).
    let field_serde = field_types.iter().map(|t| {
        let ser = format!("{p}::ser_event_field").replace(' ', "");
        let de = format!("{p}::de_event_field").replace(' ', "");
        let is_option = matches!(t, syn::Type::Path(tp) if tp.qself.is_none()
            && tp.path.segments.last().is_some_and(|s| s.ident == "Option"));
        let default = is_option.then(|| quote!(#[serde(default)]));
        quote!(#[serde(serialize_with = #ser, deserialize_with = #de)] #default)
    });
    let field_checks = field_types.iter().map(|t| {
        quote::quote_spanned! {syn::spanned::Spanned::span(t)=>
            #p::assert_event_field::<#t>();
        }
    });
    let field_checks = quote! { const _: () = { #(#field_checks)* }; };
    let field_checks = [field_checks];
    let payload = quote! {
        // First, so that a field type's own message comes before any of serde's.
        #(#field_checks)*

        #(#doc)*
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq, #p::serde::Serialize, #p::serde::Deserialize)]
        #krate_serde
        #vis_in_module struct #name {
            #(
                #[doc = #field_docs]
                #field_serde
                #vis_in_module #field_names: #field_types,
            )*
        }

        const _: () = {
            #[automatically_derived]
            impl #p::EventPayload for #name {
                type Aggregate = super::#aggregate;
                const TOPIC: &'static str = #topic;
                const KIND: #p::EventKind = #kind;
                #apply
            }

            #p::inventory::submit! {
                #p::EventType::of::<#name>(
                    ::core::concat!(::core::module_path!(), "::", #name_str),
                )
            }
        };
    };
    (wrappers, payload)
}
